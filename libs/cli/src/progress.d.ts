export interface Progress {
  update(done: number): void;
  finish(done: number): void;
}
export declare function progressBar(label: string, total: number, stream?: NodeJS.WriteStream): Progress;

// SMTP AUTH for the bridge's Postfix: the server side of Dovecot's authentication protocol
// (what Postfix speaks with smtpd_sasl_type = dovecot, here over inet:host:port), for PLAIN and
// LOGIN against a users table. A platform with Dovecot or Cyrus points Postfix at those instead;
// the bridge reads who authenticated from Postfix's own Received header either way.
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:net';

export interface SaslServer {
  readonly port: number;
  close(): Promise<void>;
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

export async function startSaslServer(options: {
  host: string;
  port: number;
  /** address → password */
  users: () => ReadonlyMap<string, string>;
}): Promise<SaslServer> {
  let connections = 0;
  const server: Server = createServer((socket) => {
    connections++;
    socket.setEncoding('utf8');
    socket.write(
      `VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nMECH\tLOGIN\tplaintext\nSPID\t${process.pid}\nCUID\t${connections}\nCOOKIE\t${'0'.repeat(32)}\nDONE\n`,
    );
    // Per request id: the mechanism and what the client said so far.
    const pending = new Map<string, { mech: string; user?: string }>();
    const verdict = (id: string, user: string, password: string) => {
      pending.delete(id);
      const known = options.users().get(user.toLowerCase());
      socket.write(
        known !== undefined && same(known, password)
          ? `OK\t${id}\tuser=${user.toLowerCase()}\n`
          : `FAIL\t${id}\tuser=${user}\treason=Authentication failed\n`,
      );
    };
    const answer = (id: string, response: string) => {
      const state = pending.get(id);
      if (!state) return;
      const text = Buffer.from(response, 'base64').toString('utf8');
      if (state.mech === 'PLAIN') {
        const [, user = '', password = ''] = text.split('\0');
        verdict(id, user, password);
      } else if (state.user === undefined) {
        state.user = text;
        socket.write(`CONT\t${id}\t${Buffer.from('Password:').toString('base64')}\n`);
      } else verdict(id, state.user, text);
    };
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let newline = buffered.indexOf('\n');
      while (newline !== -1) {
        const [command, id = '', ...rest] = buffered.slice(0, newline).split('\t');
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (command === 'AUTH') {
          const mech = (rest[0] ?? '').toUpperCase();
          if (mech !== 'PLAIN' && mech !== 'LOGIN') {
            socket.write(`FAIL\t${id}\treason=Unsupported mechanism\n`);
            continue;
          }
          pending.set(id, { mech });
          const initial = rest.find((field) => field.startsWith('resp='));
          if (initial !== undefined) answer(id, initial.slice(5));
          else
            socket.write(
              `CONT\t${id}\t${mech === 'LOGIN' ? Buffer.from('Username:').toString('base64') : ''}\n`,
            );
        } else if (command === 'CONT') answer(id, rest[0] ?? '');
      }
    });
    socket.on('error', () => socket.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

// Quality figures of a binary classifier, spam being the positive class.

export interface Quality {
  precision: number;
  recall: number;
  f1: number;
  /** Ham judged spam, over all ham. */
  fpr: number;
  rocAuc: number;
  n: number;
}

export function quality(results: readonly { spam: boolean; score: number; predicted: boolean }[]): Quality {
  let tp = 0;
  let fp = 0;
  let fn = 0;
  let tn = 0;
  for (const r of results) {
    if (r.predicted && r.spam) tp++;
    else if (r.predicted) fp++;
    else if (r.spam) fn++;
    else tn++;
  }
  const precision = tp + fp === 0 ? 0 : tp / (tp + fp);
  const recall = tp + fn === 0 ? 0 : tp / (tp + fn);
  return {
    precision,
    recall,
    f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall),
    fpr: fp + tn === 0 ? 0 : fp / (fp + tn),
    rocAuc: rocAuc(results),
    n: results.length,
  };
}

/** Area under the ROC curve: the chance a random spam scores above a random ham (ties count half). */
export function rocAuc(results: readonly { spam: boolean; score: number }[]): number {
  const sorted = [...results].sort((a, b) => a.score - b.score);
  let rankSum = 0;
  let positives = 0;
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j < sorted.length && sorted[j]?.score === sorted[i]?.score) j++;
    const averageRank = (i + 1 + j) / 2;
    for (let k = i; k < j; k++) {
      if (sorted[k]?.spam) {
        rankSum += averageRank;
        positives++;
      }
    }
    i = j;
  }
  const negatives = sorted.length - positives;
  if (positives === 0 || negatives === 0) return Number.NaN;
  return (rankSum - (positives * (positives + 1)) / 2) / (positives * negatives);
}

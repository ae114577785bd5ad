// Experiment: shared head vs adult-only / adult-weighted heads on the served base's features.
// Validation only decides; test is printed only with --test.
import { readFileSync } from 'node:fs';
import { fitHead } from './src/ml/train/head.js';
import { rocAuc, calibrateThreshold } from './src/ml/metrics.js';
type Row = { id: string; label: number; source: string; split: string; views: Float32Array[] };
const fromB64 = (s: string) => { const b = Buffer.from(s, 'base64'); return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)); };
const rows: Row[] = [];
const seen = new Map<string, Row>();
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.trim()) continue;
  try { const r = JSON.parse(line); const v = r.views.map(fromB64); const p = seen.get(r.id); if (!p || p.views.length < v.length) seen.set(r.id, { ...r, views: v }); } catch {}
}
rows.push(...seen.values());
const showTest = process.argv.includes('--test');
const A = 'nih-cxr8-pneumonia', P = 'kermany-pediatric-pneumonia';
const sub = (s: string, split: string) => rows.filter((r) => r.source === s && r.split === split);
console.log('rows', rows.length, 'adult train/val/test', sub(A, 'train').length, sub(A, 'validation').length, sub(A, 'test').length, 'ped', sub(P, 'train').length, sub(P, 'validation').length, sub(P, 'test').length);
function fit(train: Row[], weights: Record<string, number>, l2: number) {
  const feats: Float32Array[] = []; const labels: number[] = []; const sw: number[] = [];
  const count = new Map<string, number>(); for (const r of train) count.set(r.source, (count.get(r.source) ?? 0) + 1);
  const tot = [...count.keys()].reduce((s, k) => s + (weights[k] ?? 1), 0);
  for (const r of train) { const w = ((weights[r.source] ?? 1) / tot) * (train.length / count.get(r.source)!); for (const v of r.views) { feats.push(v); labels.push(r.label); sw.push(w / r.views.length); } }
  return fitHead(feats, labels, { l2, sampleWeights: sw });
}
function score(h: { weights: Float64Array; bias: number }, rs: Row[]) {
  return rs.map((r) => r.views.reduce((s, f) => { let z = h.bias; for (let c = 0; c < f.length; c++) z += h.weights[c] * f[c]; return s + 1 / (1 + Math.exp(-z)); }, 0) / r.views.length);
}
function report(name: string, h: any, set: string, split: string) {
  const rs = sub(set, split); const p = score(h, rs); const y = rs.map((r) => r.label);
  const cal = calibrateThreshold(p, y, 0.95);
  return `${split} ${set === A ? 'adult' : 'ped'} AUC ${rocAuc(p, y)!.toFixed(3)} spec@.95 ${cal.specificity.toFixed(3)}`;
}
const l2s = (process.env.L2 ?? '0.003,0.01,0.03,0.1,0.3,1').split(',').map(Number);
const variants: [string, Row[], Record<string, number>][] = [
  ['shared 1:1', [...sub(A, 'train'), ...sub(P, 'train')], { [A]: 1, [P]: 1 }],
  ['adult 3:1', [...sub(A, 'train'), ...sub(P, 'train')], { [A]: 3, [P]: 1 }],
  ['adult only', sub(A, 'train'), { [A]: 1 }],
];
const only = (process.env.VARIANTS ?? '').split(',').filter(Boolean);
for (const [name, train, w] of variants.filter(([n]) => only.length === 0 || only.includes(n))) for (const l2 of l2s) {
  const t0 = Date.now(); const h = fit(train, w, l2);
  const line = [report(name, h, A, 'validation'), report(name, h, P, 'validation')];
  if (showTest) line.push(report(name, h, A, 'test'), report(name, h, P, 'test'));
  console.log(`${name.padEnd(11)} L2 ${l2}: ${line.join(' | ')} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}

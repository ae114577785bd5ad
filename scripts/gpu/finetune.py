#!/usr/bin/env python3
"""Fine-tunes a classifier version's whole network on a GPU with PyTorch.

The version's tfjs layers graph (model.json) is rebuilt layer by layer in PyTorch (NCHW,
TensorFlow's 'same' padding), its float16 weights.bin is loaded, the network is trained on
the crops that scripts/gpu/export-crops.ts wrote (the project's own pixel contract, so the
crops here are the ones served), and each run's best epoch by validation is written back as
a weights.bin in the same manifest order, so `model.json` + the new `weights.bin` is a
version the TypeScript tools read unchanged.

  python3 finetune.py --version DIR --crops DIR --out DIR [--runs JSON] [--check]

--check compares this graph's probabilities with reference ones (reference.json from
scripts/gpu/reference-outputs.ts) and stops: the graph must match before anything trains.

A run is an object: name, lr, epochs (required); shares ({set: share of each epoch's draws},
default equal), epochImages (draws per epoch, default the train films), batch (64), seed (1),
headLrMult (1), weightDecay (1e-4), gamma (focal, 2), minEpoch (1); inputSize (train and
validate at this crop side, the crops resized with antialiasing: the weights then serve at
that side through `import-weights --input-size`); distill (0..1: that share of the loss is
the cross-entropy to the crops' `teacher` probability, bundle.ts --teacher, instead of the
focal loss to the label); frozenBn (train with every batch norm normalising by its moving
statistics, as served, and leave those statistics as they are; its scale and shift still
learn); dropout (the graph's Dropout rate while training, default the graph's own: 0 for a
head that refit-head fitted without it).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------- weights.bin (float16) I/O
def read_weights(version):
    model = json.load(open(os.path.join(version, 'model.json')))
    groups = model['weightsManifest']
    out = {}
    for g in groups:
        buf = b''.join(open(os.path.join(version, p), 'rb').read() for p in g['paths'])
        off = 0
        for w in g['weights']:
            n = int(np.prod(w['shape'])) if w['shape'] else 1
            q = (w.get('quantization') or {}).get('dtype')
            if q == 'float16':
                a = np.frombuffer(buf, dtype='<f2', count=n, offset=off).astype(np.float32)
                off += 2 * n
            elif q is None and w['dtype'] == 'float32':
                a = np.frombuffer(buf, dtype='<f4', count=n, offset=off).copy()
                off += 4 * n
            else:
                raise SystemExit(f"weight {w['name']}: quantization {q} is not supported")
            out[w['name']] = a.reshape(w['shape'])
    return model, out


def write_weights(model, values, path):
    groups = model['weightsManifest']
    if len(groups) != 1 or len(groups[0]['paths']) != 1:
        raise SystemExit('only a single-file weights manifest is written')
    parts = []
    for w in groups[0]['weights']:
        a = values[w['name']].astype(np.float32).reshape(w['shape'])
        q = (w.get('quantization') or {}).get('dtype')
        parts.append(a.astype('<f2').tobytes() if q == 'float16' else a.astype('<f4').tobytes())
    with open(path, 'wb') as f:
        f.write(b''.join(parts))


# ---------------------------------------------------------------- the graph
def same_pad(size, k, s):
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class Graph(nn.Module):
    """A tfjs/Keras functional model, evaluated in NCHW."""

    def __init__(self, topology, weights):
        super().__init__()
        cfg = topology['config']
        self.layers_cfg = cfg['layers']
        self.output_name = cfg['output_layers'][0][0]
        self.mods = nn.ModuleDict()
        self.spec = {}
        for l in self.layers_cfg:
            c, name, kind = l['config'], l['config']['name'], l['class_name']
            ins = [n[0] for n in l['inbound_nodes'][0]] if l.get('inbound_nodes') else []
            self.spec[name] = (kind, c, ins)
            if kind == 'Conv2D':
                k = weights[f'{name}/kernel']  # kh, kw, in, out
                conv = nn.Conv2d(k.shape[2], k.shape[3], (k.shape[0], k.shape[1]), stride=tuple(c['strides']), bias=c['use_bias'])
                conv.weight.data = torch.from_numpy(k.transpose(3, 2, 0, 1).copy())
                if c['use_bias']:
                    conv.bias.data = torch.from_numpy(weights[f'{name}/bias'].copy())
                self.mods[name] = conv
            elif kind == 'BatchNormalization':
                g = weights[f'{name}/gamma']
                bn = nn.BatchNorm2d(g.shape[0], eps=c['epsilon'], momentum=1 - c['momentum'])
                bn.weight.data = torch.from_numpy(g.copy())
                bn.bias.data = torch.from_numpy(weights[f'{name}/beta'].copy())
                bn.running_mean.data = torch.from_numpy(weights[f'{name}/moving_mean'].copy())
                bn.running_var.data = torch.from_numpy(weights[f'{name}/moving_variance'].copy())
                self.mods[name] = bn
            elif kind == 'Dense':
                k = weights[f'{name}/kernel']
                d = nn.Linear(k.shape[0], k.shape[1], bias=c['use_bias'])
                d.weight.data = torch.from_numpy(k.T.copy())
                if c['use_bias']:
                    d.bias.data = torch.from_numpy(weights[f'{name}/bias'].copy())
                self.mods[name] = d
            elif kind == 'Dropout':
                self.mods[name] = nn.Dropout(c['rate'])
                self.mods[name].graph_rate = c['rate']
            elif kind not in ('InputLayer', 'Activation', 'MaxPooling2D', 'AveragePooling2D', 'Concatenate', 'GlobalAveragePooling2D', 'Reshape', 'Multiply'):
                raise SystemExit(f'layer {name}: {kind} is not supported')

    def act(self, x, a, logits):
        if a in ('linear', None):
            return x
        if a == 'relu':
            return F.relu(x)
        if a == 'sigmoid':
            return x if logits else torch.sigmoid(x)
        raise SystemExit(f'activation {a} is not supported')

    def forward(self, x):
        """The output layer's logit (its sigmoid left off, for a stable loss)."""
        vals = {}
        for l in self.layers_cfg:
            name = l['config']['name']
            kind, c, ins = self.spec[name]
            a = [vals[i] for i in ins]
            last = name == self.output_name
            if kind == 'InputLayer':
                y = x
            elif kind == 'Conv2D':
                conv = self.mods[name]
                t = a[0]
                if c['padding'] == 'same':
                    kh, kw = conv.kernel_size
                    sh, sw = conv.stride
                    ph, pw = same_pad(t.shape[2], kh, sh), same_pad(t.shape[3], kw, sw)
                    if ph != (0, 0) or pw != (0, 0):
                        t = F.pad(t, (pw[0], pw[1], ph[0], ph[1]))
                y = self.act(conv(t), c.get('activation'), last)
            elif kind == 'BatchNormalization':
                y = self.mods[name](a[0])
            elif kind == 'Activation':
                y = self.act(a[0], c['activation'], last)
            elif kind == 'MaxPooling2D':
                (kh, kw), (sh, sw), t = c['pool_size'], c['strides'], a[0]
                if c['padding'] == 'same':
                    ph, pw = same_pad(t.shape[2], kh, sh), same_pad(t.shape[3], kw, sw)
                    t = F.pad(t, (pw[0], pw[1], ph[0], ph[1]), value=float('-inf'))
                y = F.max_pool2d(t, (kh, kw), (sh, sw))
            elif kind == 'AveragePooling2D':
                if c['padding'] != 'valid':
                    raise SystemExit(f'{name}: only valid average pooling is supported')
                y = F.avg_pool2d(a[0], tuple(c['pool_size']), tuple(c['strides']))
            elif kind == 'Concatenate':
                if c['axis'] != -1:
                    raise SystemExit(f'{name}: only channel concatenation is supported')
                y = torch.cat(a, dim=1)
            elif kind == 'GlobalAveragePooling2D':
                y = a[0].mean(dim=(2, 3))
            elif kind == 'Reshape':
                ts = c['target_shape']
                if len(ts) != 3 or ts[0] != 1 or ts[1] != 1:
                    raise SystemExit(f'{name}: only [1,1,C] reshapes are supported')
                y = a[0].reshape(a[0].shape[0], ts[2], 1, 1)
            elif kind == 'Multiply':
                y = a[0] * a[1]
            elif kind == 'Dense':
                y = self.act(self.mods[name](a[0]), c.get('activation'), last)
            elif kind == 'Dropout':
                y = self.mods[name](a[0])
            vals[name] = y
        return vals[self.output_name].reshape(-1)

    def export(self, template):
        """This graph's parameters under the tfjs weight names; every name of `template` must be produced."""
        out = {}
        for name, m in self.mods.items():
            if isinstance(m, nn.Conv2d):
                out[f'{name}/kernel'] = m.weight.detach().float().cpu().numpy().transpose(2, 3, 1, 0)
                if m.bias is not None:
                    out[f'{name}/bias'] = m.bias.detach().float().cpu().numpy()
            elif isinstance(m, nn.BatchNorm2d):
                out[f'{name}/gamma'] = m.weight.detach().float().cpu().numpy()
                out[f'{name}/beta'] = m.bias.detach().float().cpu().numpy()
                out[f'{name}/moving_mean'] = m.running_mean.detach().float().cpu().numpy()
                out[f'{name}/moving_variance'] = m.running_var.detach().float().cpu().numpy()
            elif isinstance(m, nn.Linear):
                out[f'{name}/kernel'] = m.weight.detach().float().cpu().numpy().T
                if m.bias is not None:
                    out[f'{name}/bias'] = m.bias.detach().float().cpu().numpy()
        missing = set(template) - set(out)
        if missing:
            raise SystemExit(f'weights not produced: {sorted(missing)[:5]}')
        return out


# ---------------------------------------------------------------- data
def load_crops(folder):
    from PIL import Image

    lines = [l.rstrip('\n').split(',') for l in open(os.path.join(folder, 'index.csv'))]
    col = {c: i for i, c in enumerate(lines[0])}
    rows = lines[1:]
    imgs = np.stack([np.asarray(Image.open(os.path.join(folder, 'img', r[col['name']])).convert('L'), dtype=np.uint8) for r in rows])
    # 'teacher' (bundle.ts --teacher): another version's served probability, '' where it has none
    teacher = lambda r: float(r[col['teacher']]) if 'teacher' in col and r[col['teacher']] != '' else None
    meta = [{'name': r[col['name']], 'file': r[col['file']], 'set': r[col['set']], 'split': r[col['split']], 'label': float(r[col['label']]), 'teacher': teacher(r)} for r in rows]
    return imgs, meta


def to_side(x, side):
    """Crops at the run's input side: an antialiased resize, as the served crop is an area resample."""
    if side is None or x.shape[-1] == side:
        return x
    return F.interpolate(x, size=(side, side), mode='bilinear', antialias=True, align_corners=False)


def augment(x, gen):
    """The project's training augmentation (data/augment.ts DEFAULT_AUGMENT), batched on the GPU."""
    n, dev = x.shape[0], x.device
    u = lambda lo, hi: lo + (hi - lo) * torch.rand(n, device=dev, generator=gen)
    lu = lambda lo, hi: torch.exp(u(math.log(lo), math.log(hi)))
    ang = u(-8, 8) * math.pi / 180
    scale = lu(0.9, 1.1)
    crop = u(0.85, 1.0)  # zoom into a box of this side, at a random place
    cx, cy = u(-1, 1) * (1 - crop), u(-1, 1) * (1 - crop)
    sx, sy = u(-0.05, 0.05) * 2, u(-0.05, 0.05) * 2
    cos, sin = torch.cos(ang), torch.sin(ang)
    z = crop / scale
    theta = torch.stack([torch.stack([cos * z, -sin * z, cx - sx], 1), torch.stack([sin * z, cos * z, cy - sy], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    y = F.grid_sample(x, grid, mode='bilinear', padding_mode='zeros', align_corners=False)
    gamma = lu(0.8, 1.25).view(n, 1, 1, 1)
    y = y.clamp(0, 1) ** gamma
    y = (y - 0.5) * lu(0.8, 1.2).view(n, 1, 1, 1) + 0.5 + u(-0.08, 0.08).view(n, 1, 1, 1)
    y = y + torch.randn(y.shape, device=dev, generator=gen) * u(0, 0.02).view(n, 1, 1, 1)
    return y.clamp(0, 1)


def auc(y, p):
    """Mann-Whitney AUC, ties counted half (average ranks)."""
    y, p = np.asarray(y), np.asarray(p)
    pos, neg = p[y == 1], p[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float('nan')
    _, inverse, counts = np.unique(np.concatenate([pos, neg]), return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def spec_at_recall(y, p, recall=0.95):
    y, p = np.asarray(y), np.asarray(p)
    pos = np.sort(p[y == 1])
    if len(pos) == 0 or (y == 0).sum() == 0:
        return float('nan')
    t = pos[int(math.floor((1 - recall) * len(pos)))]
    return float((p[y == 0] < t).mean())


@torch.no_grad()
def predict(net, x, dev, side=None):
    net.eval()
    # a DenseNet's concatenations hold every layer's maps: 256 crops at once is 20+ GB off a GPU
    bs = 256 if dev.type == 'cuda' else 16
    out = []
    for s in range(0, len(x), bs):
        b = to_side(torch.from_numpy(x[s:s + bs]).to(dev).float().div_(255).unsqueeze(1), side)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda'):
            out.append(torch.sigmoid(net(b).float()).cpu().numpy())
    return np.concatenate(out)


def set_metrics(meta, idx, p):
    res = {}
    for s in sorted({meta[i]['set'] for i in idx}):
        k = [j for j, i in enumerate(idx) if meta[i]['set'] == s]
        y = [meta[idx[j]]['label'] for j in k]
        q = p[k]
        res[s] = {'n': len(k), 'auc': auc(y, q), 'specAtRecall95': spec_at_recall(y, q)}
    return res


def train_mode(net, run):
    """The network in training mode as the run asks.

    frozenBn: a batch of 16-32 crops has statistics unlike the moving ones (on 16 train crops
    the served network's logits move by 1-4 in train-mode batch norm), so small CPU batches
    train the network that is served instead. dropout: refit-head folds its feature
    standardisation into the head's weights, so the graph's dropout in front of such a head
    moves the logit by tens (up to 50 on 16 crops where eval gives -6..0) and the first steps
    undo the fitted head; 0 trains it as it was fitted.
    """
    net.train()
    for mod in net.modules():
        if run.get('frozenBn') and isinstance(mod, nn.BatchNorm2d):
            mod.eval()
        if isinstance(mod, nn.Dropout):
            mod.p = float(run.get('dropout', mod.graph_rate))


def focal(logit, y, gamma=2.0):
    bce = F.binary_cross_entropy_with_logits(logit, y, reduction='none')
    pt = torch.exp(-bce)
    return (1 - pt) ** gamma * bce


def train_run(run, model, weights, imgs, meta, dev, out_dir):
    topology = model['modelTopology']
    torch.manual_seed(run.get('seed', 1))
    gen = torch.Generator(device=dev)
    gen.manual_seed(run.get('seed', 1))
    net = Graph(topology, weights).to(dev).to(memory_format=torch.channels_last)
    tr = [i for i, m in enumerate(meta) if m['split'] == 'train']
    va = [i for i, m in enumerate(meta) if m['split'] == 'validation']
    # set -> share of each epoch's draws; default: the sets present, equally
    shares = run.get('shares') or {s: 1.0 for s in {meta[i]['set'] for i in tr}}
    counts = {}
    for i in tr:
        counts[meta[i]['set']] = counts.get(meta[i]['set'], 0) + 1
    w = np.array([shares.get(meta[i]['set'], 0.0) / counts[meta[i]['set']] for i in tr])
    w = w / w.sum()
    per_epoch = run.get('epochImages', len(tr))
    xtr = torch.from_numpy(imgs[tr]).to(dev)
    ytr = torch.tensor([meta[i]['label'] for i in tr], device=dev)
    side = run.get('inputSize')
    # distillation: `distill` of the loss pulls towards the teacher's probability (the label where it has none)
    alpha = run.get('distill', 0.0)
    if alpha > 0 and all(meta[i]['teacher'] is None for i in tr):
        raise SystemExit(f"[{run['name']}] distill {alpha} needs a 'teacher' column in the crops' index.csv (bundle.ts --teacher)")
    ttr = torch.tensor([meta[i]['teacher'] if meta[i]['teacher'] is not None else meta[i]['label'] for i in tr], device=dev)
    # the output layer may learn faster (headLrMult) than the network under it
    out_prefix = f'mods.{net.output_name}.'
    head = [p for n, p in net.named_parameters() if n.startswith(out_prefix)]
    body = [p for n, p in net.named_parameters() if not n.startswith(out_prefix)]
    opt = torch.optim.AdamW([{'params': body, 'lr': run['lr']}, {'params': head, 'lr': run['lr'] * run.get('headLrMult', 1)}], weight_decay=run.get('weightDecay', 1e-4))
    bs = run.get('batch', 64)
    steps = run['epochs'] * (per_epoch // bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=[run['lr'], run['lr'] * run.get('headLrMult', 1)], total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(run.get('seed', 1))
    best, history = None, []
    p0 = predict(net, imgs[va], dev, side=side)
    base = set_metrics(meta, va, p0)
    log(f"[{run['name']}] start: " + ', '.join(f"{s} auc {m['auc']:.4f} spec@r95 {m['specAtRecall95']:.3f}" for s, m in base.items()))
    for ep in range(run['epochs']):
        if time.time() >= DEADLINE:
            log(f"[{run['name']}] stopped after epoch {ep}: the time budget is spent")
            break
        t0 = time.time()
        train_mode(net, run)
        draw = rng.choice(len(tr), size=per_epoch, p=w)
        tot = 0.0
        for s in range(0, per_epoch - bs + 1, bs):
            k = torch.from_numpy(draw[s:s + bs]).to(dev)
            x = to_side(augment(xtr[k].float().div(255).unsqueeze(1), gen), side).contiguous(memory_format=torch.channels_last)
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == 'cuda'):
                logit = net(x).float()
            loss = focal(logit, ytr[k], run.get('gamma', 2.0)).mean()
            if alpha > 0:
                loss = (1 - alpha) * loss + alpha * F.binary_cross_entropy_with_logits(logit, ttr[k])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot += loss.item()
        p = predict(net, imgs[va], dev, side=side)
        m = set_metrics(meta, va, p)
        sets = sorted(m)
        score = float(np.nanmean([m[s]['auc'] for s in sets])) if any(not math.isnan(m[s]['auc']) for s in sets) else float('-inf')
        history.append({'epoch': ep + 1, 'loss': tot / max(1, per_epoch // bs), 'score': score, 'sets': m})
        log(f"[{run['name']}] epoch {ep + 1}/{run['epochs']} loss {history[-1]['loss']:.4f} {time.time() - t0:.1f}s " + ', '.join(f"{s} auc {m[s]['auc']:.4f} spec@r95 {m[s]['specAtRecall95']:.3f}" for s in sets))
        if ep + 1 >= run.get('minEpoch', 1) and (best is None or score > best['score']):
            best = {'epoch': ep + 1, 'score': score, 'sets': m}
            write_weights(model, net.export(weights), os.path.join(out_dir, f"{run['name']}.weights.bin"))
    return {'run': run, 'start': base, 'best': best, 'history': history}


DEADLINE = float('inf')


def main():
    global DEADLINE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--version', required=True, help='classifier version folder (model.json + weights.bin)')
    ap.add_argument('--crops', required=True, help='folder written by export-crops.ts')
    ap.add_argument('--out', required=True, help='where each run writes <name>.weights.bin and results.json goes')
    ap.add_argument('--runs', help='JSON list of runs (name, shares, lr, epochs, ...)')
    ap.add_argument('--check', help='reference.json of tfjs probabilities: compare and stop')
    ap.add_argument('--budget-seconds', type=float, default=float('inf'), help='stop training (keeping each run\'s best so far) once this much time has passed')
    a = ap.parse_args()
    dev = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    torch.backends.cudnn.benchmark = True
    model, weights = read_weights(a.version)
    os.makedirs(a.out, exist_ok=True)
    if a.check:
        from PIL import Image

        ref = json.load(open(a.check))
        x = np.stack([np.asarray(Image.open(os.path.join(a.crops, 'img', r['name'])).convert('L'), dtype=np.uint8) for r in ref])
        net = Graph(model['modelTopology'], weights).to(dev)
        net.eval()
        with torch.no_grad():
            p = torch.sigmoid(net(torch.from_numpy(x).float().div(255).unsqueeze(1).to(dev))).cpu().numpy()
        diff = np.abs(p - np.array([r['probability'] for r in ref]))
        log(f'max |torch - tfjs| probability over {len(ref)} crops: {diff.max():.2e}')
        # round trip: exporting the untouched graph gives back the same float16 weights
        write_weights(model, net.export(weights), os.path.join(a.out, 'roundtrip.weights.bin'))
        same = open(os.path.join(a.out, 'roundtrip.weights.bin'), 'rb').read() == open(os.path.join(a.version, 'weights.bin'), 'rb').read()
        log(f'weights.bin round trip identical: {same}')
        sys.exit(0 if diff.max() < 1e-3 and same else 1)
    imgs, meta = load_crops(a.crops)
    log(f'{len(meta)} crops on {dev} ({torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"})')
    runs = json.loads(a.runs) if a.runs else [{'name': 'adult50', 'shares': {'nih-cxr8-pneumonia': 0.5, 'kermany-pediatric-pneumonia': 0.5}, 'lr': 1e-4, 'epochs': 12}]
    results = []
    DEADLINE = time.time() + a.budget_seconds
    for run in runs:
        if time.time() >= DEADLINE:
            log(f"[{run['name']}] skipped: the time budget is spent")
            continue
        t0 = time.time()
        results.append(train_run(run, model, weights, imgs, meta, dev, a.out))
        results[-1]['seconds'] = time.time() - t0
        # provenance: what trained it, kept with the version by import-weights --log
        results[-1]['environment'] = {
            'torch': torch.__version__,
            'device': torch.cuda.get_device_name(0) if dev.type == 'cuda' else 'cpu',
            'crops': len(meta),
            'version': os.path.abspath(a.version).rstrip('/').split('/')[-1],
        }
        json.dump(results, open(os.path.join(a.out, 'results.json'), 'w'), indent=1)
    log(json.dumps([{'name': r['run']['name'], 'best': r['best'], 'seconds': round(r['seconds'])} for r in results], indent=1))


if __name__ == '__main__':
    main()

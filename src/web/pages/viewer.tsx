import { useEffect, useRef, useState } from 'preact/hooks';
import { decodeRuns } from '../../imaging/mask-runs.js';
import { api, ApiError, binary, query } from '../api.js';
import { dragWindow, type Film, heatColor, outline, paint, presets, type Window, windowTable } from '../film.js';
import { navigate } from '../nav.js';
import { qcWords, type WorklistRow } from './worklist.js';

interface Report {
  probability: number;
  threshold: number;
  targetRecall: number;
  decision: 'positive' | 'negative';
  flagged: boolean;
  flagReasons: string[];
  validation: { sensitivity: number; specificity: number | null };
  tta: { views: number; probabilities: number[]; spread: number; uncertainBound: number };
  lungAreaFraction: number;
  lungBox: { x0: number; y0: number; x1: number; y1: number } | null;
  qcFlags: string[];
  window: { source: string; center: number | null; width: number | null; reason: string };
  models: { segmenter: { name: string; version: string }; classifier: { name: string; version: string } };
  image: { width: number; height: number };
  cam?: { width: number; height: number; values: number[] };
  mask?: { width: number; height: number; runs: number[] };
}

interface Review {
  id: number;
  reviewer: string;
  verdict: 'agree' | 'disagree';
  label: string | null;
  note: string;
  amendsId: number | null;
  createdAt: string;
}

interface Study {
  id: string;
  status: string;
  accessionNumber?: string | null;
  studyDate?: string | null;
  modality: string | null;
  viewPosition: string | null;
  receivedAt: string;
  patientPseudonym: string | null;
  error: { code: string; message: string } | null;
  prediction: { probability: number; threshold: number; flagged: boolean; report: Report } | null;
  reviews?: Review[];
}

interface Prior {
  studyId: string;
  receivedAt: string;
  probability: number | null;
  flagged: boolean;
}

const REASONS: Record<string, string> = {
  positive: 'the probability is at or above the threshold',
  uncertain: 'the augmented views disagree more than the uncertainty bound allows',
};

function reasonWords(r: string): string {
  if (r.startsWith('qc:')) return `quality check: ${qcWords([r.slice(3)])}`;
  return REASONS[r] ?? r;
}

async function loadFilm(id: string): Promise<{ film: Film; stored: Window | null }> {
  const { bytes, headers } = await binary(`/v1/studies/${id}/film`);
  const num = (h: string) => Number(headers.get(h));
  const film: Film = {
    width: num('X-Film-Width'),
    height: num('X-Film-Height'),
    codes: new Uint16Array(bytes),
    min: num('X-Film-Min'),
    max: num('X-Film-Max'),
    invert: headers.get('X-Film-Invert') === '1',
  };
  const c = headers.get('X-Film-Window-Center');
  const w = headers.get('X-Film-Window-Width');
  return { film, stored: c !== null && w !== null ? { center: Number(c), width: Number(w) } : null };
}

/** Offscreen layers at the film's size (film) or smaller (overlays), redrawn only when their inputs change. */
function heatLayer(r: Report): HTMLCanvasElement | null {
  if (!r.cam) return null;
  const c = document.createElement('canvas');
  c.width = r.cam.width;
  c.height = r.cam.height;
  const ctx = c.getContext('2d') as CanvasRenderingContext2D;
  const img = ctx.createImageData(c.width, c.height);
  r.cam.values.forEach((v, i) => img.data.set(heatColor(v), i * 4));
  ctx.putImageData(img, 0, 0);
  return c;
}

function outlineLayer(r: Report): HTMLCanvasElement | null {
  if (!r.mask) return null;
  // the stored mask is at the segmenter's resolution; outline it at 2x so the line stays thin when scaled up
  const { width: w, height: h } = r.mask;
  const m = decodeRuns(r.mask.runs, w * h);
  const W = w * 2;
  const H = h * 2;
  const up = new Uint8Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) up[y * W + x] = m[(y >> 1) * w + (x >> 1)];
  const edge = outline(up, W, H);
  const c = document.createElement('canvas');
  c.width = W;
  c.height = H;
  const ctx = c.getContext('2d') as CanvasRenderingContext2D;
  const img = ctx.createImageData(W, H);
  for (let i = 0; i < edge.length; i++) {
    if (!edge[i]) continue;
    img.data.set([0, 230, 120, 255], i * 4);
  }
  ctx.putImageData(img, 0, 0);
  return c;
}

export function ViewerPage(props: { studyId: string }) {
  const id = props.studyId;
  const [study, setStudy] = useState<Study | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [film, setFilm] = useState<{ film: Film; stored: Window | null } | null>(null);
  const [win, setWin] = useState<Window | null>(null);
  const [zoom, setZoom] = useState(1);
  const [pan, setPan] = useState({ x: 0, y: 0 });
  const [dragMode, setDragMode] = useState<'window' | 'pan'>('window');
  const [showHeat, setShowHeat] = useState(true);
  const [showOutline, setShowOutline] = useState(true);
  const [opacity, setOpacity] = useState(0.45);
  const [priors, setPriors] = useState<Prior[]>([]);
  const [compare, setCompare] = useState<string | null>(null);
  const canvas = useRef<HTMLCanvasElement>(null);
  const filmLayer = useRef<HTMLCanvasElement | null>(null);
  const layers = useRef<{ heat: HTMLCanvasElement | null; outline: HTMLCanvasElement | null }>({ heat: null, outline: null });

  const reload = async () => {
    const s = await api<Study>('GET', `/v1/studies/${id}`);
    setStudy(s);
    return s;
  };

  useEffect(() => {
    setStudy(null);
    setFilm(null);
    setError(null);
    setCompare(null);
    // the film (8 MB at 2048x2048) is fetched alongside the study, not after it
    const filmLoad = loadFilm(id);
    filmLoad.catch(() => undefined);
    reload()
      .then((s) => {
        if (s.prediction) layers.current = { heat: heatLayer(s.prediction.report), outline: outlineLayer(s.prediction.report) };
        api<{ items: Prior[] }>('GET', `/v1/studies/${id}/priors`).then(
          (p) => setPriors(p.items),
          () => setPriors([]),
        );
        return filmLoad;
      })
      .then((f) => {
        setFilm(f);
        setWin(presets(f.film, f.stored)[0].window);
        setZoom(1);
        setPan({ x: 0, y: 0 });
      })
      .catch((e) => setError(e instanceof ApiError ? `${e.code}: ${e.message}` : String(e)));
  }, [id]);

  // the film is windowed into its own canvas when the window changes
  useEffect(() => {
    if (!film || !win) return;
    const f = film.film;
    const c = filmLayer.current ?? document.createElement('canvas');
    c.width = f.width;
    c.height = f.height;
    const ctx = c.getContext('2d') as CanvasRenderingContext2D;
    const img = ctx.createImageData(f.width, f.height);
    paint(f, windowTable(f, win), img.data);
    ctx.putImageData(img, 0, 0);
    filmLayer.current = c;
    draw();
  }, [film, win]);

  useEffect(() => draw(), [zoom, pan, showHeat, showOutline, opacity]);

  function draw(): void {
    const view = canvas.current;
    const f = filmLayer.current;
    if (!view || !f || !film) return;
    const ctx = view.getContext('2d') as CanvasRenderingContext2D;
    const fit = Math.min(view.width / f.width, view.height / f.height);
    const s = fit * zoom;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, view.width, view.height);
    ctx.setTransform(s, 0, 0, s, view.width / 2 - (f.width * s) / 2 + pan.x, view.height / 2 - (f.height * s) / 2 + pan.y);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(f, 0, 0);
    const r = study?.prediction?.report;
    if (r && showHeat && layers.current.heat) {
      const b = r.lungBox ?? { x0: 0, y0: 0, x1: f.width, y1: f.height };
      ctx.globalAlpha = opacity;
      ctx.drawImage(layers.current.heat, b.x0, b.y0, b.x1 - b.x0, b.y1 - b.y0);
      ctx.globalAlpha = 1;
    }
    if (r && showOutline && layers.current.outline) ctx.drawImage(layers.current.outline, 0, 0, f.width, f.height);
  }

  const drag = useRef<{ x: number; y: number; win: Window; pan: { x: number; y: number } } | null>(null);
  const onDown = (e: PointerEvent) => {
    if (!win) return;
    drag.current = { x: e.clientX, y: e.clientY, win, pan };
    (e.currentTarget as HTMLElement).setPointerCapture(e.pointerId);
  };
  const onMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d || !film) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (dragMode === 'window' && !e.shiftKey) setWin(dragWindow(d.win, dx, dy, film.film.max - film.film.min));
    else setPan({ x: d.pan.x + dx, y: d.pan.y + dy });
  };
  const onUp = () => {
    drag.current = null;
  };
  const onWheel = (e: WheelEvent) => {
    e.preventDefault();
    setZoom((z) => Math.min(16, Math.max(0.25, z * (e.deltaY < 0 ? 1.2 : 1 / 1.2))));
  };

  useEffect(() => {
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  function onKey(e: KeyboardEvent): void {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement || e.target instanceof HTMLSelectElement) return;
    if (e.key === 'h') setShowHeat((v) => !v);
    else if (e.key === 'o') setShowOutline((v) => !v);
    else if (e.key === 'w') setDragMode((m) => (m === 'window' ? 'pan' : 'window'));
    else if (e.key === '+' || e.key === '=') setZoom((z) => Math.min(16, z * 1.2));
    else if (e.key === '-') setZoom((z) => Math.max(0.25, z / 1.2));
    else if (e.key === '0') {
      setZoom(1);
      setPan({ x: 0, y: 0 });
    } else return;
    e.preventDefault();
  }

  if (error)
    return (
      <section>
        <h1>Study</h1>
        <p class="error" role="alert">
          {error}
        </p>
      </section>
    );
  if (!study) return <p class="loading">Loading study…</p>;
  const p = study.prediction;
  const r = p?.report;
  return (
    <section class="viewer">
      <h1>
        Study {study.accessionNumber ? `accession ${study.accessionNumber}` : study.id.slice(0, 8)}
        {study.studyDate ? ` · ${study.studyDate}` : ''}
      </h1>
      <div class="viewer-grid">
        <div class="film-pane">
          <div class="toolbar" role="toolbar" aria-label="Image tools">
            {film &&
              presets(film.film, film.stored).map((pr) => (
                <button type="button" key={pr.name} onClick={() => setWin(pr.window)}>
                  {pr.name}
                </button>
              ))}
            <button type="button" aria-pressed={dragMode === 'window'} onClick={() => setDragMode(dragMode === 'window' ? 'pan' : 'window')}>
              Drag: {dragMode === 'window' ? 'window/level' : 'pan'} (w)
            </button>
            <button type="button" aria-pressed={showHeat} onClick={() => setShowHeat(!showHeat)}>
              Heatmap (h)
            </button>
            <button type="button" aria-pressed={showOutline} onClick={() => setShowOutline(!showOutline)}>
              Lung outline (o)
            </button>
            <label>
              Heatmap opacity <input type="range" min={0} max={1} step={0.05} value={opacity} onInput={(e) => setOpacity(Number(e.currentTarget.value))} />
            </label>
            <button type="button" onClick={() => setZoom((z) => Math.min(16, z * 1.2))} aria-label="Zoom in">
              +
            </button>
            <button type="button" onClick={() => setZoom((z) => Math.max(0.25, z / 1.2))} aria-label="Zoom out">
              −
            </button>
          </div>
          <p class="window-readout" aria-live="polite">
            {win ? `Window centre ${win.center.toFixed(0)}, width ${win.width.toFixed(0)}` : 'Loading film…'} · zoom {zoom.toFixed(2)}x
          </p>
          <div class={compare ? 'side-by-side' : ''}>
            <canvas
              ref={canvas}
              width={900}
              height={900}
              class="film"
              role="img"
              aria-label="Chest film with overlays"
              tabIndex={0}
              onPointerDown={onDown}
              onPointerMove={onMove}
              onPointerUp={onUp}
              onWheel={onWheel}
            />
            {compare && <img class="prior" src={`/v1/studies/${compare}/image.png`} alt="Previous study of the same patient" />}
          </div>
        </div>
        <aside class="report" aria-label="Report">
          <h2>Report</h2>
          {!p || !r ? (
            <p>{study.error ? `Could not be scored: ${study.error.code} (${study.error.message}). Read the film yourself.` : `Status: ${study.status}`}</p>
          ) : (
            <>
              <p class={p.flagged ? 'verdict flagged' : 'verdict'}>
                <strong>{p.flagged ? 'Flagged for review' : 'Not flagged'}</strong>: probability {r.probability.toFixed(3)} against threshold{' '}
                {r.threshold.toFixed(3)}
              </p>
              {r.flagReasons.length > 0 && (
                <ul>
                  {r.flagReasons.map((x) => (
                    <li key={x}>{reasonWords(x)}</li>
                  ))}
                </ul>
              )}
              <p>
                "Flagged" means the film should be read before unflagged ones. The threshold was set so that {Math.round(r.targetRecall * 100)}% of pneumonias
                in the validation set would be flagged (validation sensitivity {(r.validation.sensitivity * 100).toFixed(0)}%
                {r.validation.specificity !== null ? `, specificity ${(r.validation.specificity * 100).toFixed(0)}%` : ''}). An unflagged film is not cleared.
              </p>
              <p>
                Test-time augmentation: {r.tta.views} views gave {r.tta.probabilities.map((x) => x.toFixed(2)).join(', ')}; spread {r.tta.spread.toFixed(3)}{' '}
                {r.tta.spread > r.tta.uncertainBound ? 'exceeds' : 'is within'} the uncertainty bound {r.tta.uncertainBound.toFixed(3)}.
              </p>
              <p>
                Quality checks: {r.qcFlags.length ? qcWords(r.qcFlags) : 'passed'} (lungs cover {(r.lungAreaFraction * 100).toFixed(0)}% of the image).
              </p>
              <p>
                The model saw the film windowed by {r.window.source} ({r.window.reason}), the lungs found by {r.models.segmenter.name}@
                {r.models.segmenter.version}, scored by {r.models.classifier.name}@{r.models.classifier.version}. The overlays are the ones stored with this
                prediction.
              </p>
            </>
          )}
          <ReviewForm study={study} onSaved={reload} />
          {priors.length > 0 && (
            <>
              <h2>Previous studies of this patient</h2>
              <ul class="priors">
                {priors.map((pr) => (
                  <li key={pr.studyId}>
                    {new Date(pr.receivedAt).toLocaleDateString()} · {pr.probability === null ? 'not scored' : pr.probability.toFixed(3)}
                    {pr.flagged ? ' (flagged)' : ''}{' '}
                    <button type="button" onClick={() => setCompare(compare === pr.studyId ? null : pr.studyId)}>
                      {compare === pr.studyId ? 'Hide' : 'Compare'}
                    </button>
                  </li>
                ))}
              </ul>
            </>
          )}
        </aside>
      </div>
    </section>
  );
}

function ReviewForm(props: { study: Study; onSaved: () => Promise<unknown> }) {
  const reviews = props.study.reviews ?? [];
  const latest = reviews.at(-1) ?? null;
  // What the form holds is also kept in a ref that every change writes at once: a key pressed
  // right after a click (Disagree, then Ctrl+Enter) reaches a listener of the previous render,
  // and must save what was chosen, not what that render saw.
  const [form, setForm] = useState<{ verdict: 'agree' | 'disagree' | null; label: string; note: string }>({ verdict: null, label: '', note: '' });
  const current = useRef(form);
  const update = (patch: Partial<typeof form>) => {
    current.current = { ...current.current, ...patch };
    setForm(current.current);
  };
  const { verdict, label, note } = form;
  const setVerdict = (v: 'agree' | 'disagree') => update({ verdict: v });
  const [status, setStatus] = useState<string | null>(null);
  const canReview = props.study.prediction !== null;

  const save = async () => {
    const { verdict, label, note } = current.current;
    if (!verdict) {
      setStatus('Choose Agree or Disagree first.');
      return;
    }
    try {
      await api('POST', `/v1/studies/${props.study.id}/reviews`, {
        verdict,
        label: label || undefined,
        note,
        amends: latest ? latest.id : undefined,
      });
      setStatus(latest ? 'Review amended (the earlier one is kept in the history).' : 'Review saved.');
      update({ note: '' });
      await props.onSaved();
    } catch (e) {
      setStatus(e instanceof ApiError ? `Not saved: ${e.message}` : 'Not saved');
    }
  };

  const nextFlagged = async () => {
    const page = await api<{ items: WorklistRow[] }>('GET', `/v1/worklist${query({ flagged: true, reviewed: false, limit: 5 })}`);
    const next = page.items.find((r) => r.studyId !== props.study.id);
    if (next) navigate(`/app/studies/${next.studyId}`);
    else setStatus('No other flagged study is waiting for review.');
  };

  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLTextAreaElement;
      if ((e.key === 'Enter' && (e.ctrlKey || e.metaKey)) || (!typing && e.key === 's')) {
        e.preventDefault();
        save();
      } else if (!typing && e.key === 'a') setVerdict('agree');
      else if (!typing && e.key === 'd') setVerdict('disagree');
      else if (!typing && e.key === 'n') nextFlagged();
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  });

  return (
    <form
      class="review"
      aria-label="Review"
      onSubmit={(e) => {
        e.preventDefault();
        save();
      }}
    >
      <h2>Review</h2>
      {!canReview && <p>There is no prediction to review yet.</p>}
      <fieldset class="verdict-buttons">
        <legend>Verdict</legend>
        <button type="button" aria-pressed={verdict === 'agree'} onClick={() => setVerdict('agree')} disabled={!canReview}>
          Agree
        </button>
        <button type="button" aria-pressed={verdict === 'disagree'} onClick={() => setVerdict('disagree')} disabled={!canReview}>
          Disagree
        </button>
      </fieldset>
      <label for="review-label">Your reading</label>
      <select id="review-label" value={label} onChange={(e) => update({ label: e.currentTarget.value })} disabled={!canReview}>
        <option value="">(not given)</option>
        <option value="pneumonia">Pneumonia</option>
        <option value="no_pneumonia">No pneumonia</option>
        <option value="uncertain">Uncertain</option>
      </select>
      <label for="review-note">Note</label>
      <textarea id="review-note" rows={3} maxLength={4000} value={note} onInput={(e) => update({ note: e.currentTarget.value })} disabled={!canReview} />
      <div class="actions">
        <button type="submit" disabled={!canReview}>
          Save review
        </button>
        <button type="button" onClick={nextFlagged}>
          Next flagged
        </button>
      </div>
      <p class="hint">Keys: a agree, d disagree, s or Ctrl+Enter save, n next flagged, h heatmap, o outline, w drag mode.</p>
      {status && (
        <p role="status" class="status">
          {status}
        </p>
      )}
      {reviews.length > 0 && (
        <>
          <h3>History</h3>
          <ol class="history">
            {reviews.map((rv) => (
              <li key={rv.id}>
                {new Date(rv.createdAt).toLocaleString()} · {rv.reviewer}: {rv.verdict}
                {rv.label ? `, read as ${rv.label.replace('_', ' ')}` : ''}
                {rv.amendsId ? ` (amends #${rv.amendsId})` : ''}
                {rv.note ? ` — ${rv.note}` : ''}
              </li>
            ))}
          </ol>
        </>
      )}
    </form>
  );
}

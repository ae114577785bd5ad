/** Small SVG charts: no charting library, no canvas, readable by screen readers through their table fallback. */
export interface Series {
  name: string;
  values: (number | null)[];
}

const W = 460;
const H = 200;
const PAD = { l: 44, r: 10, t: 24, b: 34 };
const COLORS = ['#1f6feb', '#d1242f', '#1a7f37', '#9a6700', '#8250df'];

function scaleMax(series: Series[], percent: boolean): number {
  if (percent) return 1;
  const m = Math.max(1, ...series.flatMap((s) => s.values.filter((v): v is number => v !== null)));
  return m;
}

function Axis(props: { max: number; percent: boolean; labels: string[] }) {
  const ticks = [0, 0.5, 1].map((f) => f * props.max);
  const step = Math.max(1, Math.ceil(props.labels.length / 6));
  return (
    <g class="axis">
      {ticks.map((t) => {
        const y = PAD.t + (H - PAD.t - PAD.b) * (1 - t / props.max);
        return (
          <g key={t}>
            <line x1={PAD.l} x2={W - PAD.r} y1={y} y2={y} stroke="#ddd" />
            <text x={PAD.l - 4} y={y + 4} text-anchor="end">
              {props.percent ? `${Math.round(t * 100)}%` : Math.round(t)}
            </text>
          </g>
        );
      })}
      {props.labels.map((l, i) =>
        i % step === 0 ? (
          <text key={l} x={PAD.l + ((i + 0.5) * (W - PAD.l - PAD.r)) / props.labels.length} y={H - PAD.b + 14} text-anchor="middle">
            {l.length > 10 ? l.slice(5) : l}
          </text>
        ) : null,
      )}
    </g>
  );
}

function Fallback(props: { title: string; labels: string[]; series: Series[]; percent?: boolean }) {
  return (
    <table class="sr-only">
      <caption>{props.title}</caption>
      <thead>
        <tr>
          <th scope="col">label</th>
          {props.series.map((s) => (
            <th scope="col" key={s.name}>
              {s.name}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.labels.map((l, i) => (
          <tr key={l}>
            <th scope="row">{l}</th>
            {props.series.map((s) => (
              <td key={s.name}>{s.values[i] === null ? '' : props.percent ? `${Math.round((s.values[i] as number) * 100)}%` : s.values[i]}</td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Legend(props: { series: Series[] }) {
  return (
    <p class="legend">
      {props.series.map((s, i) => (
        <span key={s.name}>
          <span class="swatch" style={{ background: COLORS[i % COLORS.length] }} /> {s.name}
        </span>
      ))}
    </p>
  );
}

export function BarChart(props: { title: string; labels: string[]; series: Series[]; percent?: boolean }) {
  const max = scaleMax(props.series, !!props.percent);
  const n = props.labels.length || 1;
  const band = (W - PAD.l - PAD.r) / n;
  const bw = (band * 0.8) / Math.max(1, props.series.length);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axis max={max} percent={!!props.percent} labels={props.labels} />
        {props.series.map((s, si) =>
          s.values.map((v, i) => {
            if (v === null) return null;
            const h = ((H - PAD.t - PAD.b) * v) / max;
            return (
              <rect key={`${si}-${i}`} x={PAD.l + i * band + band * 0.1 + si * bw} y={H - PAD.b - h} width={bw} height={h} fill={COLORS[si % COLORS.length]} />
            );
          }),
        )}
      </svg>
      <Legend series={props.series} />
      <Fallback {...props} />
    </figure>
  );
}

export function LineChart(props: { title: string; labels: string[]; series: Series[]; percent?: boolean }) {
  const max = scaleMax(props.series, !!props.percent);
  const n = props.labels.length || 1;
  const x = (i: number) => PAD.l + ((i + 0.5) * (W - PAD.l - PAD.r)) / n;
  const y = (v: number) => PAD.t + (H - PAD.t - PAD.b) * (1 - v / max);
  return (
    <figure class="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={props.title}>
        <Axis max={max} percent={!!props.percent} labels={props.labels} />
        {props.series.map((s, si) => {
          const pts = s.values.map((v, i) => (v === null ? null : `${x(i)},${y(v)}`)).filter((p): p is string => p !== null);
          return (
            <g key={s.name}>
              <polyline points={pts.join(' ')} fill="none" stroke={COLORS[si % COLORS.length]} stroke-width={2} />
              {pts.map((p) => {
                const [px, py] = p.split(',').map(Number);
                return <circle key={p} cx={px} cy={py} r={3} fill={COLORS[si % COLORS.length]} />;
              })}
            </g>
          );
        })}
      </svg>
      <Legend series={props.series} />
      <Fallback {...props} />
    </figure>
  );
}

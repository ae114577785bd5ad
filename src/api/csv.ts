/** RFC 4180 CSV, with spreadsheet formula injection neutralised. */

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s: string;
  if (v instanceof Date) s = v.toISOString();
  else if (Array.isArray(v)) s = v.join(';');
  else s = String(v);
  // A cell starting with = + - @ (or tab/CR) is run as a formula by spreadsheets; numbers are safe.
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function toCsv<T>(columns: readonly (keyof T)[], rows: readonly T[]): string {
  const lines = [columns.map((c) => cell(String(c))).join(',')];
  for (const r of rows) lines.push(columns.map((c) => cell(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

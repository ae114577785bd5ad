/**
 * A small RFC 4180 CSV reader and writer for labels files: comma-separated, fields quoted with
 * double quotes when they hold commas, quotes or newlines, "" for a quote inside quotes, CRLF
 * or LF line ends, optional UTF-8 BOM. Errors name the line.
 */
import { CxrError } from '../errors.js';

export interface CsvRow {
  /** 1-based line number where the record starts (the header is line 1) */
  line: number;
  fields: string[];
}

export interface CsvTable {
  header: string[];
  rows: CsvRow[];
}

export function parseCsv(text: string, name = 'CSV'): CsvTable {
  const src = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const records: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let start = 1;
  let i = 0;
  let quoted = false;
  let wasQuoted = false;
  const endField = (): void => {
    fields.push(wasQuoted ? field : field.trim());
    field = '';
    wasQuoted = false;
  };
  const endRecord = (): void => {
    endField();
    // Skip blank lines (a lone empty field), common at the end of files.
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: start, fields });
    fields = [];
  };
  while (i < src.length) {
    const ch = src[i];
    if (quoted) {
      if (ch === '"') {
        if (src[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        // After a closing quote only a separator or a line end may follow.
        const next = src[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r')
          throw new CxrError('E_BAD_DATASET', `${name} line ${line}: unexpected '${next}' after a closing quote`);
        continue;
      }
      if (ch === '\n') line++;
      field += ch;
      i++;
      continue;
    }
    if (ch === '"') {
      if (field.trim() !== '') throw new CxrError('E_BAD_DATASET', `${name} line ${line}: a quote inside an unquoted field`);
      field = '';
      quoted = true;
      wasQuoted = true;
      i++;
      continue;
    }
    if (ch === ',') {
      endField();
      i++;
      continue;
    }
    if (ch === '\r' || ch === '\n') {
      endRecord();
      if (ch === '\r' && src[i + 1] === '\n') i++;
      i++;
      line++;
      start = line;
      continue;
    }
    field += ch;
    i++;
  }
  if (quoted) throw new CxrError('E_BAD_DATASET', `${name} line ${start}: a quoted field is never closed`);
  if (field !== '' || fields.length > 0 || wasQuoted) endRecord();
  if (records.length === 0) throw new CxrError('E_BAD_DATASET', `${name} is empty: expected a header line`);
  const [head, ...rows] = records;
  for (const r of rows) {
    if (r.fields.length !== head.fields.length)
      throw new CxrError('E_BAD_DATASET', `${name} line ${r.line}: ${r.fields.length} fields, but the header has ${head.fields.length}`);
  }
  return { header: head.fields, rows };
}

function quote(v: string): string {
  return /[",\r\n]/.test(v) || v !== v.trim() ? `"${v.replace(/"/g, '""')}"` : v;
}

/** One CSV line (no line end), quoting fields only where needed. */
export function csvLine(fields: readonly (string | number)[]): string {
  return fields.map((f) => quote(String(f))).join(',');
}

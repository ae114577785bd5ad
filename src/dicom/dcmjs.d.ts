/** The part of dcmjs this project uses (it ships no types). */
declare module 'dcmjs' {
  export interface DcmjsElement {
    vr: string;
    Value?: unknown[];
    InlineBinary?: string;
    BulkDataURI?: string;
  }
  export interface DcmjsDicomDict {
    meta: Record<string, DcmjsElement>;
    dict: Record<string, DcmjsElement>;
  }
  const dcmjs: {
    data: {
      DicomMetaDictionary: {
        dictionary: Record<string, { vr: string } | undefined>;
        nameMap: Record<string, { tag: string; vr: string } | undefined>; unpunctuateTag(tag: string): string };
      DicomDict: new (meta: Record<string, DcmjsElement>) => { dict: Record<string, DcmjsElement>; write(): ArrayBuffer };
      DicomMessage: { readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean }): DcmjsDicomDict };
    };
    log: { setLevel(level: string): void; getLogger(name: string): { setLevel(level: string): void } };
  };
  export default dcmjs;
}

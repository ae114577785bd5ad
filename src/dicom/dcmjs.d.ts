/**
 * The part of dcmjs (a maintained DICOM library, https://github.com/dcmjs-org/dcmjs) this
 * project uses; it ships no types. Reading headers (WADO-RS metadata, QIDO-RS attributes) and
 * writing the derived result objects. A "naturalized" dataset names attributes by keyword
 * (PatientName, ContentSequence, ...); sequences are arrays of such objects.
 */
declare module 'dcmjs' {
  export type NaturalDataset = Record<string, unknown>;
  export interface DcmjsElement {
    vr: string;
    Value?: unknown[];
    InlineBinary?: string;
    BulkDataURI?: string;
  }
  export interface DcmjsDicomDict {
    meta: Record<string, DcmjsElement>;
    dict: Record<string, DcmjsElement>;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomMetaDictionary: {
        dictionary: Record<string, { vr: string } | undefined>;
        nameMap: Record<string, { tag: string; vr: string } | undefined>;
        unpunctuateTag(tag: string): string;
        denaturalizeDataset(ds: NaturalDataset): Record<string, DcmjsElement>;
        naturalizeDataset(ds: Record<string, DcmjsElement>): NaturalDataset;
      };
      DicomDict: new (meta: Record<string, DcmjsElement>) => DcmjsDicomDict;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { ignoreErrors?: boolean; untilTag?: string; includeUntilTagValue?: boolean }): DcmjsDicomDict;
      };
    };
    log: { setLevel(level: string): void; getLogger(name: string): { setLevel(level: string): void } };
  };
  export default dcmjs;
}

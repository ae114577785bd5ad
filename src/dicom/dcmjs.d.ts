/**
 * The little of dcmjs (a maintained DICOM library, https://github.com/dcmjs-org/dcmjs) this
 * package uses to write derived objects: it ships no type declarations of its own.
 * A "naturalized" dataset names attributes by keyword (PatientName, ContentSequence, ...);
 * sequences are arrays of such objects.
 */
declare module 'dcmjs' {
  export type NaturalDataset = Record<string, unknown>;
  interface DicomDictInstance {
    dict: Record<string, unknown>;
    meta: Record<string, unknown>;
    write(options?: { allowInvalidVRLength?: boolean }): ArrayBuffer;
  }
  const dcmjs: {
    data: {
      DicomMetaDictionary: {
        denaturalizeDataset(ds: NaturalDataset): Record<string, unknown>;
        naturalizeDataset(ds: Record<string, unknown>): NaturalDataset;
      };
      DicomDict: new (meta: Record<string, unknown>) => DicomDictInstance;
      DicomMessage: {
        readFile(buffer: ArrayBuffer, options?: { untilTag?: string; ignoreErrors?: boolean }): DicomDictInstance;
      };
    };
    log: { setLevel(level: string): void };
  };
  export default dcmjs;
}

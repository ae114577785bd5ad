/**
 * Worker thread for `writeSynthDataset({ jobs })`: generates the studies it is asked for and
 * returns the DICOM bytes, the mask PNG and the labels row. Each study depends only on
 * (seed, index, options), so which worker makes it does not change a byte.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { encodeMaskPng } from './mask-png.js';
import { generateStudy, type SynthOptions } from './phantom/study.js';

interface Job {
  index: number;
}

const { seed, opts } = workerData as { seed: number; opts: SynthOptions };

parentPort!.on('message', (job: Job) => {
  void (async () => {
    try {
      const st = generateStudy(seed, job.index, opts);
      const png = await encodeMaskPng(st.mask, st.width, st.height);
      const dicom = st.dicom;
      parentPort!.postMessage({ index: job.index, dicom, png, row: st.row }, [dicom.buffer as ArrayBuffer, png.buffer as ArrayBuffer]);
    } catch (e) {
      parentPort!.postMessage({
        index: job.index,
        error: e instanceof Error ? { name: e.name, message: e.message, code: (e as { code?: string }).code } : { message: String(e) },
      });
    }
  })();
});

import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadConfig } from '../../app/config.js';
import { openServiceDatabase } from '../../app/database.js';
import { listModels } from '../../db/models.js';
import { registryDisagreements } from '../../service/model-registry.js';
import type { ModelVersionRow } from '../../db/entities.js';
import { CxrError } from '../../errors.js';
import {
  activateOnDisk,
  formatChange,
  formatPortablePath,
  listVersions,
  locateModelVersion,
  MANIFEST_FILE,
  manifestChanges,
  manifestDigest,
  MODEL_NAMES,
  ONNX_FILE,
  readActive,
  readManifest,
  verifyManifest,
  type ModelManifest,
  type ModelName,
  type VersionEntry,
} from '../../ml/model-store/index.js';
import { promoteModelVersion } from '../../service/model-activation.js';
import { parseFraction, startShadowRun, stopShadow } from '../../service/shadow.js';
import { runningShadow } from '../../db/shadow.js';
import { auditOperator, operator, withDatabase } from '../operator.js';
import { action, collect } from '../run.js';
import { buildModelCard, writeModelCard } from '../model-card.js';
import { servedThreshold } from '../../ml/model-card.js';
import { repackVersion } from '../repack-version.js';
import { registerBaseline } from './model-baseline.js';
import { registerCleanStaging } from './model-clean-staging.js';

interface ModelsOptions {
  models: string;
  json?: boolean;
  registry?: boolean;
}

const f3 = (v: unknown) => (typeof v === 'number' ? v.toFixed(3) : 'n/a');

/**
 * The headline figures: the threshold the engine applies (the int8 model's own block when int8
 * is served, with each population's value), then the test split as training scored it (its
 * model and its own pooled threshold: for a derived version, the float model it came from).
 */
export function headline(m: ModelManifest): string {
  const t = m.metrics.test ?? {};
  const { precision, threshold: th } = servedThreshold(m);
  if (th) {
    const how = th.calibratedOn ? `${th.calibratedOn.views} views` : 'single view';
    const pops = Object.entries(th.populations ?? {})
      .map(([name, p]) => `${name} ${f3(p?.value)}`)
      .join(', ');
    return (
      `threshold ${f3(th.value)} ${precision} (${pops ? `${pops}; ` : ''}${how}, recall target ${th.targetRecall}); ` +
      `training test split: AUC ${f3(t.auc)}, recall ${f3(t.recall)}, specificity ${f3(t.specificity)} at ${f3(t.threshold)}`
    );
  }
  return `training test split: Dice ${f3(t.dice)}, IoU ${f3(t.iou)}`;
}

/** A version named as a folder path, NAME@VERSION, NAME/VERSION, or a version name found under either model. */
export async function findVersion(modelsDir: string, ref: string): Promise<VersionEntry> {
  if (existsSync(join(ref, MANIFEST_FILE))) {
    const m = await readManifest(ref);
    return { name: m.name as ModelName, version: m.version, dir: resolve(ref), manifest: m };
  }
  const parts = ref.split(/[@/]/);
  const names = parts.length === 2 ? [parts[0]] : MODEL_NAMES;
  const version = parts[parts.length - 1];
  const found: VersionEntry[] = [];
  for (const n of names) {
    if (!(MODEL_NAMES as readonly string[]).includes(n)) throw new CxrError('E_BAD_ARGUMENT', `no model '${n}' (models are ${MODEL_NAMES.join(', ')})`);
    for (const v of await listVersions(modelsDir, n as ModelName)) if (v.version === version) found.push(v);
  }
  if (found.length === 0) throw new CxrError('E_NOT_FOUND', `no version '${ref}' in ${modelsDir} (give NAME@VERSION or a version folder)`);
  if (found.length > 1) throw new CxrError('E_BAD_ARGUMENT', `'${ref}' is a version of both models: give NAME@VERSION`);
  return found[0];
}

/** The registry's rows and every way they disagree with the folder (the check serve and worker run at start). */
async function readRegistry(modelsDir: string): Promise<{ rows: ModelVersionRow[]; disagreements: string[] }> {
  const db = await openServiceDatabase(loadConfig());
  try {
    return { rows: await listModels(db.ds), disagreements: await registryDisagreements(db.ds, modelsDir) };
  } finally {
    await db.close();
  }
}

interface ListedVersion {
  name: ModelName;
  version: string;
  active: boolean;
  createdAt: string;
  onnx: boolean;
  derivedFrom: string | null;
  threshold: number | null;
  summary: string;
  /** registry: 'active' (served at the last start), 'registered', 'not registered', or null without --registry */
  registry: string | null;
  /** with --registry: how this version's folder disagrees with its registered row (serve and worker refuse to start then) */
  disagreements: string[] | null;
}

export function register(program: Command): void {
  const models = program
    .command('models')
    .alias('model')
    .description('model versions on disk (and in the service registry): list, show, activate, diff, clean-staging; shadow candidates and promotion')
    .addHelpText(
      'after',
      '\nmodels/<name>/ACTIVE names the version the service serves (first non-comment line); without it the newest is served.\n' +
        'Versions are immutable: `calibrate` writes a new <version>-rN; activate it here or with POST /v1/admin/models/<name>/<version>/activate.\n' +
        'Try a version on live traffic first: `model shadow NAME@VERSION --fraction 0.2` scores a sample of studies with it as well\n' +
        '(never shown or sent), GET /v1/models/shadow compares it, and `model promote NAME@VERSION` makes it the active one.\n' +
        '`model` and `models` are the same command.',
    );

  models
    .command('list')
    .description('every version of both models: which is active, threshold and test metrics, derivation, registry state')
    .option('--models <dir>', 'models folder', 'models')
    .option('--registry', "also read the service database's model_versions (DATABASE_URL, else the embedded PostgreSQL)")
    .option('--json', 'print one JSON array')
    .action(
      action(async (o: ModelsOptions) => {
        const registry = o.registry ? await readRegistry(o.models) : null;
        const rows = registry?.rows ?? null;
        // `name@version` then ':', ' ' or '+int8' (the quantized file's row)
        const problemsOf = (name: string, version: string) =>
          registry ? registry.disagreements.filter((d) => d.startsWith(`${name}@${version}`) && /^[:+ ]/.test(d.slice(`${name}@${version}`.length))) : null;
        const out: ListedVersion[] = [];
        for (const name of MODEL_NAMES) {
          const versions = await listVersions(o.models, name);
          const active = versions.length ? await locateModelVersion(o.models, name).catch(() => null) : null;
          for (const v of versions) {
            const row = rows?.find((r) => r.name === name && r.version === v.version);
            out.push({
              name,
              version: v.version,
              active: active === v.dir,
              createdAt: v.manifest.createdAt,
              onnx: Boolean(v.manifest.files[ONNX_FILE]),
              derivedFrom: v.manifest.derivedFrom ? `${v.manifest.derivedFrom.version} (${v.manifest.derivedFrom.reason})` : null,
              threshold: v.manifest.threshold?.value ?? null,
              summary: headline(v.manifest),
              registry: rows ? (row ? (row.active ? 'active' : 'registered') : 'not registered') : null,
              disagreements: problemsOf(name, v.version),
            });
          }
          // registered versions whose folder is gone: predictions name them, the disk no longer has them
          for (const r of rows ?? []) {
            if (r.name === name && !versions.some((v) => v.version === r.version)) {
              out.push({
                name,
                version: r.version,
                active: false,
                createdAt: '',
                onnx: false,
                derivedFrom: null,
                threshold: null,
                summary: '(not on disk)',
                registry: r.active ? 'active' : 'registered',
                disagreements: problemsOf(name, r.version),
              });
            }
          }
        }
        if (o.json) {
          process.stdout.write(`${JSON.stringify(out)}\n`);
          return;
        }
        if (out.length === 0) process.stderr.write(`no model versions in ${resolve(o.models)}\n`);
        for (const v of out) {
          const flags = [
            v.active ? 'ACTIVE' : '',
            v.onnx ? '' : 'no model.onnx',
            v.derivedFrom ? `from ${v.derivedFrom}` : '',
            v.registry ? `registry: ${v.registry}` : '',
            v.disagreements?.length ? 'DISAGREES WITH THE REGISTRY' : '',
          ]
            .filter(Boolean)
            .join(', ');
          process.stdout.write(`${v.active ? '*' : ' '} ${v.name.padEnd(10)} ${v.version.padEnd(22)} ${v.summary}${flags ? `  [${flags}]` : ''}\n`);
        }
        if (registry && registry.disagreements.length > 0) {
          process.stderr.write(
            `the registry and ${resolve(o.models)} disagree (serve and worker will not start until the registered files are back):\n  ${registry.disagreements.join('\n  ')}\n`,
          );
        }
      }),
    );

  models
    .command('show')
    .description('one version: manifest summary, provenance, digest, whether its files verify and whether it is active')
    .argument('<version>', 'NAME@VERSION, a version name, or a version folder')
    .option('--models <dir>', 'models folder', 'models')
    .option('--json', 'print the manifest with digest, active and verification added')
    .action(
      action(async (ref: string, o: ModelsOptions) => {
        const v = await findVersion(o.models, ref);
        const check = await verifyManifest(v.dir);
        const active = (await readActive(o.models, v.name).catch(() => null)) === v.version;
        const m = v.manifest;
        if (o.json) {
          process.stdout.write(`${JSON.stringify({ ...m, digest: manifestDigest(m), active, verified: check })}\n`);
          return;
        }
        const t = m.training;
        const lines: [string, string][] = [
          ['version', `${m.name}@${m.version}${active ? ' (ACTIVE)' : ''}`],
          ['folder', v.dir],
          ['digest', manifestDigest(m)],
          ['files', check.ok ? `${Object.keys(m.files).length} verified` : `DO NOT MATCH: ${JSON.stringify(check)}`],
          ['architecture', `${m.architecture} ${JSON.stringify(m.architectureConfig)}, input ${m.inputSize}`],
          ['created', m.createdAt],
          ['summary', headline(m)],
        ];
        if (m.threshold?.calibratedOn) {
          const c = m.threshold.calibratedOn;
          lines.push(['calibrated on', `${c.n} ${c.subset} images of ${formatPortablePath(c.split)}, ${c.views} views, ${c.scorer}, ${c.at}`]);
        }
        for (const w of m.threshold?.warnings ?? []) lines.push(['warning', w]);
        if (m.derivedFrom)
          lines.push([
            'derived from',
            `${m.derivedFrom.name}@${m.derivedFrom.version} (${m.derivedFrom.reason}, digest ${m.derivedFrom.digest.slice(0, 12)}…)`,
          ]);
        if (t) {
          lines.push(['data', `${t.data ? formatPortablePath(t.data) : '?'} (${t.dataSize} images, sha256 ${String(t.dataHash).slice(0, 12)}…)`]);
          lines.push(['split', `${t.split.train}/${t.split.validation}/${t.split.test} (seed ${t.split.seed ?? '?'})`]);
          lines.push(['epochs', `${t.epochs} (best ${t.bestEpoch ?? '?'})`]);
          if (t.initFrom) lines.push(['init from', `${t.initFrom.name ?? '?'}@${t.initFrom.version ?? '?'} (${formatPortablePath(t.initFrom.location)})`]);
          if (t.environment) {
            const e = t.environment;
            lines.push(['code', `${e.gitCommit ?? 'unknown commit'}; node ${e.node}, tfjs ${e.tfjs}, onnxruntime ${e.onnxruntime}, ${e.platform}`]);
            lines.push(['command', e.command.join(' ')]);
          }
        }
        const w = Math.max(...lines.map(([k]) => k.length));
        process.stdout.write(`${lines.map(([k, x]) => `${k.padEnd(w)}  ${x}`).join('\n')}\n`);
      }),
    );

  models
    .command('card')
    .description(
      "a version's model card (MODEL_CARD.md): intended use, data with attribution, per-set figures with 95% bootstrap intervals from the manifest and " +
        'the evaluations saved in evaluations/ (`evaluate --save`), calibration, what the threshold means per 100 studies, known failure modes, provenance',
    )
    .argument('<version>', 'NAME@VERSION, a version name, or a version folder')
    .option('--models <dir>', 'models folder', 'models')
    .option('--write', 'write MODEL_CARD.md into the version folder (left out of the manifest hashes, like evaluations/) instead of printing it')
    .option('--pictures', "draw each saved evaluation's most confident errors through the served pipeline into card/ (needs the data folders)")
    .option('--segmenter <dir>', 'segmenter version folder for --pictures (default: the one --models serves)')
    .option('--data <dir>', 'a data folder, found by its name before the recorded paths (repeatable): for --pictures and README attributions', collect, [])
    .addHelpText(
      'after',
      '\nA person\'s notes go in <version>/card/notes.json: {"summary": "...", "intendedUse": [...], "notForUse": [...], ' +
        '"failureModes": [{"title": "...", "detail": "...", "pictures": ["card/x.png"]}]}; the card adds them to what it computes.',
    )
    .action(
      action(async (ref: string, o: ModelsOptions & { write?: boolean; pictures?: boolean; segmenter?: string; data: string[] }) => {
        const v = await findVersion(o.models, ref);
        const segmenterDir = o.pictures
          ? o.segmenter
            ? resolve(o.segmenter)
            : v.name === 'segmenter'
              ? v.dir
              : await locateModelVersion(o.models, 'segmenter')
          : undefined;
        const opts = { pictures: o.pictures, segmenterDir, dataDirs: o.data, log: (line: string) => process.stderr.write(`${line}\n`) };
        if (o.write) {
          process.stdout.write(`${await writeModelCard(v.dir, opts)}\n`);
          return;
        }
        process.stdout.write((await buildModelCard(v.dir, opts)).text);
      }),
    );

  models
    .command('activate')
    .description(
      'make a version the one this models folder names (writes models/<name>/ACTIVE atomically, after checking its files and model.onnx); ' +
        'a service serves it when its database names no active version yet, else `model promote` decides',
    )
    .argument('<name>', 'segmenter | classifier')
    .argument('<version>', 'version folder name')
    .option('--models <dir>', 'models folder', 'models')
    .action(
      action(async (name: string, version: string, o: ModelsOptions) => {
        const before = (MODEL_NAMES as readonly string[]).includes(name) ? await readActive(o.models, name as ModelName).catch(() => null) : null;
        const { entry } = await activateOnDisk(o.models, name, version);
        process.stdout.write(`${entry.name} ${before ?? '(newest)'} -> ${entry.version}\n`);
        process.stderr.write(
          `wrote ${join(resolve(o.models), entry.name, 'ACTIVE')}. A service started on a database whose registry names no active ${entry.name} yet serves it; ` +
            `once the registry names one, the registry decides what every process serves: switch it with \`cxr-triage model promote ${entry.name}@${entry.version}\` ` +
            `or POST /v1/admin/models/${entry.name}/${entry.version}/activate\n`,
        );
      }),
    );

  models
    .command('diff')
    .description('what changed between two versions: threshold and calibration, metrics, architecture, files, training')
    .argument('<a>', 'NAME@VERSION, a version name, or a version folder')
    .argument('<b>', 'the same, for the other version')
    .option('--models <dir>', 'models folder', 'models')
    .option('--json', 'print the changes as a JSON array of {key, from, to}')
    .action(
      action(async (a: string, b: string, o: ModelsOptions) => {
        const va = await findVersion(o.models, a);
        const vb = await findVersion(o.models, b);
        const changes = manifestChanges(va.manifest, vb.manifest);
        if (o.json) {
          process.stdout.write(`${JSON.stringify(changes)}\n`);
          return;
        }
        process.stdout.write(`${va.name}@${va.version} -> ${vb.name}@${vb.version}: ${changes.length} change${changes.length === 1 ? '' : 's'}\n`);
        for (const c of changes) process.stdout.write(`  ${formatChange(c)}\n`);
      }),
    );

  models
    .command('repack')
    .description(
      'a new version whose int8 model stores every float tensor that float16 holds exactly (the SE blocks, the batch norms kept in float, the head: the weights ship as float16) as float16 behind a Cast; ' +
        'the same outputs bit for bit (checked on random inputs before anything is written), so threshold, calibration and figures carry over; fewer bytes. The source stays as it was',
    )
    .argument('<version>', 'NAME@VERSION, a version name, or a version folder')
    .option('--models <dir>', 'models folder', 'models')
    .option('--version <name>', 'name of the new version (default: the next <version>-rN)')
    .action(
      action(async (ref: string, o: ModelsOptions & { version?: string }) => {
        const v = await findVersion(o.models, ref);
        const r = await repackVersion(v.dir, { version: o.version });
        process.stdout.write(
          `${v.name} ${r.source} -> ${r.written.version}: ${r.file} ${(r.bytes.before / 1e6).toFixed(2)} -> ${(r.bytes.after / 1e6).toFixed(2)} MB ` +
            `(${r.halved} tensors as float16; outputs identical on ${r.checkedInputs} random batches)\n`,
        );
        process.stderr.write(
          `wrote ${r.written.dir}; ${r.source} is unchanged. Its evaluations and card are not copied: evaluate --save and models card --write again, then \`cxr-triage models activate ${v.name} ${r.written.version}\`\n`,
        );
      }),
    );

  models
    .command('shadow')
    .description(
      'score a sample of new studies with a candidate version as well as the active model (stored apart: never in the worklist, FHIR, PACS results or statistics); ' +
        'without arguments, say which candidate runs. Needs the service database (DATABASE_URL, else the embedded PostgreSQL under CXR_DATA_DIR)',
    )
    .argument('[version]', 'NAME@VERSION, a version name, or a version folder under the models folder')
    .option(
      '--fraction <f>',
      'share of studies sampled, in (0, 1]: a study is in when a hash of its StudyInstanceUID falls below it, so every worker and every rerun agree',
    )
    .option('--off', 'stop the running candidate (its results and comparison stay)')
    .option('--clear', 'the same as --off')
    .option('--models <dir>', 'models folder (default CXR_MODELS_DIR, else models)')
    .option('--json', 'print the setting as JSON')
    .addHelpText(
      'after',
      '\nOne candidate runs at a time; starting another replaces it. Each change is audited (model.shadow.start / model.shadow.stop).\n' +
        'Workers read the setting from PostgreSQL before each study; a candidate that fails to load or score is logged and counted\n' +
        '(cxr_shadow_results_total{outcome="failed"}), never the study. Compare with GET /v1/models/shadow (auditor, admin).',
    )
    .action(
      action(async (ref: string | undefined, o: { fraction?: string; off?: boolean; clear?: boolean; models?: string; json?: boolean }) => {
        const stop = Boolean(o.off || o.clear);
        if (stop && (ref !== undefined || o.fraction !== undefined)) throw new CxrError('E_BAD_ARGUMENT', '--off takes no version and no --fraction');
        const say = (x: unknown, text: string) => process.stdout.write(o.json ? `${JSON.stringify(x)}\n` : `${text}\n`);
        if (stop) {
          const stopped = await withDatabase(({ ds }) => stopShadow(ds, operator(), (m, detail) => auditOperator(m, 'model.shadow.stop', detail)));
          say({ stopped }, stopped ? `stopped shadow candidate ${stopped.name}@${stopped.version}` : 'no shadow candidate was running');
          return;
        }
        if (ref === undefined) {
          if (o.fraction !== undefined) throw new CxrError('E_BAD_ARGUMENT', '--fraction needs a version');
          const running = await withDatabase(({ ds }) => runningShadow(ds));
          say(
            { running },
            running
              ? `${running.name}@${running.version} scores ${running.fraction} of studies (since ${running.startedAt.toISOString()}, by ${running.startedBy})`
              : 'no shadow candidate is running',
          );
          return;
        }
        if (o.fraction === undefined) throw new CxrError('E_BAD_ARGUMENT', 'give --fraction F (a share of studies in (0, 1])');
        const fraction = parseFraction(o.fraction);
        const modelsDir = o.models ?? loadConfig().modelsDir;
        const v = await findVersion(modelsDir, ref);
        // the step the admin API shares: servable from the models folder, not the registry's active version
        const r = await withDatabase(({ ds }) =>
          startShadowRun(ds, modelsDir, { name: v.name, version: v.version, fraction, by: operator() }, (m, detail) =>
            auditOperator(m, 'model.shadow.start', detail),
          ),
        );
        say(
          r,
          `${v.name}@${v.version} now scores ${fraction} of new studies in shadow` +
            (r.replaced ? ` (replacing ${r.replaced.name}@${r.replaced.version})` : ''),
        );
      }),
    );

  registerBaseline(models);

  registerCleanStaging(models);

  models
    .command('promote')
    .description(
      'make a version the active one for the whole deployment: checks its files, writes models/<name>/ACTIVE, marks it active in the service registry, ' +
        'ends its shadow run and writes an audit row (model.promote), all or nothing. Running workers switch before their next study',
    )
    .argument('<version>', 'NAME@VERSION, a version name, or a version folder under the models folder')
    .option('--models <dir>', 'models folder (default CXR_MODELS_DIR, else models)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      '\nThe same step as POST /v1/admin/models/<name>/<version>/activate, without a running service: workers of every process read\n' +
        "the registry's active versions before each study and load the promoted one from their models folder (a shared volume, or the same image).",
    )
    .action(
      action(async (ref: string, o: { models?: string; json?: boolean }) => {
        const modelsDir = o.models ?? loadConfig().modelsDir;
        const v = await findVersion(modelsDir, ref);
        const r = await withDatabase(({ ds }) =>
          promoteModelVersion({
            ds,
            modelsDir,
            name: v.name,
            version: v.version,
            by: operator(),
            audit: (m, detail) => auditOperator(m, 'model.promote', detail),
          }),
        );
        if (o.json) {
          process.stdout.write(`${JSON.stringify(r)}\n`);
          return;
        }
        process.stdout.write(`${v.name} ${r.from ?? '(newest)'} -> ${r.to}${r.shadowStopped ? ` (shadow run of ${r.shadowStopped} ended)` : ''}\n`);
        process.stderr.write(
          `wrote ${join(resolve(modelsDir), v.name, 'ACTIVE')} and marked ${r.registered} active; running workers switch before their next study\n`,
        );
      }),
    );
}

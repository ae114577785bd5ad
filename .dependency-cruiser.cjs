/**
 * Import rules for src/ (run by `npm run depcheck`, in .ci/run): a layer imports only layers
 * listed before it, and no module imports itself through a circle. The order is the one in
 * ARCHITECTURE.md; test/layering.test.ts shows that a wrong import in a fixture fails.
 */
// web/ is the browser app's bundle: above everything, and it reaches down only to pure modules (imaging/mask-runs)
const LAYERS = ['dicom', 'imaging', 'data', 'ml', 'inference', 'db', 'service', 'api', 'app', 'cli', 'web'];

const upward = LAYERS.map((layer, i) => ({
  name: `layer-${layer}`,
  comment: `src/${layer}/ may import only ${['errors.ts', 'worker-boot.ts', ...LAYERS.slice(0, i)].join(', ')} (layers below it)`,
  severity: 'error',
  from: { path: `^src/${layer}/` },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'layer-unlisted',
      comment: 'every folder of src/ belongs in LAYERS (and ARCHITECTURE.md), or nothing checks what it imports',
      severity: 'warn',
      from: { path: '^src/' },
      to: { path: '^src/', pathNot: [`^src/(${LAYERS.join('|')})/`, '^src/(errors|worker-boot)[.]ts$'] },
    },
    {
      name: 'errors-is-the-root',
      comment: 'src/errors.ts and src/worker-boot.ts are imported by every layer, so they import none',
      severity: 'error',
      from: { path: '^src/(errors|worker-boot)[.]ts$' },
      to: { path: '^src/' },
    },
    {
      name: 'no-circular',
      comment: 'a circle makes two modules one; move the shared piece into a module both import',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'an import that resolves to nothing is a typo or a missing dependency',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    // TypeScript 7 has no JS API for dependency-cruiser to parse with; swc (@swc/core) parses the sources
    parser: 'swc',
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'], mainFields: ['module', 'main', 'types'] },
    // the swc parser reads .ts only: the web app's .tsx pages are left out (they import its .ts modules, which are checked)
    exclude: { path: '^(node_modules|dist)/|[.]tsx$' },
  },
};

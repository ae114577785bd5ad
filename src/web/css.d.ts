// esbuild bundles imported stylesheets into main.css; the import itself has no value.
declare module '*.css';

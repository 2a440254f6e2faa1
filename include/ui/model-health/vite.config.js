// Builds the model-health page as one UMD file that the Airflow UI loads as a plugin React app.
// The host page supplies React (globalThis.React, ReactDOM, ReactJSXRuntime); everything else,
// the chart library included, is bundled. Output: the plugin's static folder, served by
// glideslope.airflow.health at /glideslope-health/static/model-health.js.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const out = fileURLToPath(new URL("../../glideslope/airflow/static", import.meta.url));

export default defineConfig({
  esbuild: { jsx: "automatic" },
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: out,
    emptyOutDir: false,
    sourcemap: false,
    minify: true,
    lib: {
      entry: fileURLToPath(new URL("src/main.jsx", import.meta.url)),
      name: "AirflowPlugin",
      formats: ["umd"],
      fileName: () => "model-health.js",
    },
    rollupOptions: {
      external: ["react", "react-dom", "react/jsx-runtime"],
      output: {
        globals: { react: "React", "react-dom": "ReactDOM", "react/jsx-runtime": "ReactJSXRuntime" },
      },
    },
  },
});

// The console is served by the gateway under /console; its built assets are committed in
// dist/ (make console rebuilds them; tests/unit/gateway/test_console_build.py checks they
// match src/).
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: { "/v1": "http://127.0.0.1:8080" },
  },
});

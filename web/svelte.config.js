// Svelte options for the dashboard (vite-plugin-svelte reads this file).
export default {
  compilerOptions: { runes: true },
};

import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['node_modules/', 'data/', 'dist/', 'sandbox-images/**/build/'] },
  // Vendored: Vue's own production build, given to candidates unchanged.
  { ignores: ['tasks/junior/panel/setup/vue.global.prod.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  { languageOptions: { globals: globals.node } },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  { files: ['bin/**', 'bench/**'], rules: { 'no-console': 'off' } },
  // The browser grader's driver: CommonJS for the toolbox's Node.js, with functions that run in the page.
  {
    files: ['graders/browser/driver.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node, ...globals.browser } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  // The newman grader's driver: CommonJS for the toolbox's Node.js.
  {
    files: ['graders/newman/driver.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);

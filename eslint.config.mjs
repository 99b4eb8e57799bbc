// Lint rules for src, test, bench and scripts (run by `npm run lint`). typescript-eslint's recommended set, with the
// few rules this codebase deliberately departs from written out and explained; formatting is prettier's job.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/**/generated/**', 'bench/results/**', 'tmp-exp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly',
        setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', performance: 'readonly',
        AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', fetch: 'readonly',
        structuredClone: 'readonly', globalThis: 'readonly', NodeJS: 'readonly', WebAssembly: 'readonly', Response: 'readonly',
      },
    },
    rules: {
      // A `let` assigned once, after a closure that reads it was made (a timer cleared by a callback): keep the let.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
      // Unused names are errors, except those marked unused on purpose (`_x`) and rest siblings used to drop a field.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true, caughtErrors: 'none' }],
    },
  },
  {
    // Tests walk arbitrary JSON answers and proto-loader objects; `any` there is the honest type.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);

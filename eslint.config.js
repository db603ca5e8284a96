// @ts-check
// ESLint: the recommended rules of ESLint and typescript-eslint, relaxed only where they would
// churn deliberate code (npm run lint; npm test runs it). DISKMINT_LINT_TYPES=1 (npm run
// lint:types) adds the rules that need type information (no-floating-promises and friends):
// they build the whole program, ~3x the time, so they are not part of every npm test.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Node's globals, for the plain .js/.mjs/.cjs scripts (TypeScript files get them from @types/node). */
const nodeGlobals = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'URLSearchParams',
    'TextEncoder',
    'TextDecoder',
    'setTimeout',
    'clearTimeout',
    'setImmediate',
    'clearImmediate',
    'queueMicrotask',
    'structuredClone',
    'performance',
    'globalThis',
  ].map((g) => [g, 'readonly']),
);
const commonjsGlobals = { require: 'readonly', module: 'writable', exports: 'writable', __dirname: 'readonly', __filename: 'readonly' };

const typed = process.env.DISKMINT_LINT_TYPES === '1';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'out/', 'demo/'] },
  js.configs.recommended,
  tseslint.configs.recommended,
  {
    rules: {
      // Binary formats check for control characters on purpose (FAT names, VMDK descriptors).
      'no-control-regex': 'off',
      // Style only: tests match padded progress lines with literal spaces.
      'no-regex-spaces': 'off',
      // The code's convention: a leading _ marks a deliberately unused name.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: { globals: nodeGlobals },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { ...nodeGlobals, ...commonjsGlobals } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  ...(typed
    ? [
        {
          files: ['**/*.ts'],
          languageOptions: { parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname } },
          rules: {
            '@typescript-eslint/no-floating-promises': 'error',
            '@typescript-eslint/no-misused-promises': 'error',
            '@typescript-eslint/await-thenable': 'error',
            '@typescript-eslint/only-throw-error': 'error',
          },
        },
      ]
    : []),
);

// Type-aware linting. The two promise rules are errors because a floating promise in a worker is a
// lost completion: a step whose tool finished stays `running` until its lease expires.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'dist/**', '.runwarden/**', 'coverage/**', 'bench/results/**', 'bin/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/test return promises the runner itself tracks.
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/restrict-template-expressions': 'off',
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
  {
    // The example app has a tsconfig.json of its own, for users who copy it; here it is checked with
    // the repository's, under which `runwarden` resolves to src/ (see customConditions).
    files: ['examples/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: ['./tsconfig.json'], tsconfigRootDir: import.meta.dirname } },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  // The dashboard runs in the browser (src/ui/ is served as is, see src/http/routes/ui.ts).
  {
    files: ['src/ui/**/*.js'],
    languageOptions: {
      globals: Object.fromEntries(
        ['window', 'document', 'location', 'history', 'fetch', 'sessionStorage', 'AbortController', 'AbortSignal', 'TextDecoderStream', 'URL', 'URLSearchParams',
          'PopStateEvent', 'addEventListener', 'removeEventListener', 'dispatchEvent', 'requestAnimationFrame', 'cancelAnimationFrame', 'setTimeout', 'clearTimeout',
          'setInterval', 'clearInterval', 'scrollTo', 'console'].map((g) => [g, 'readonly']),
      ),
    },
  },
);

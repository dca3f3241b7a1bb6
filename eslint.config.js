// Flat config: typescript-eslint's type-aware rules over src, test and bench.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const FRAMEWORKS = ['fastify', '@fastify/*', 'prom-client', 'pino', 'pino-*']

/** src/<dir>/** may import neither the frameworks nor the listed sibling folders. */
function layer(dir, forbidden) {
  return [{
    files: [`src/${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: FRAMEWORKS, message: `src/${dir}/ is framework-free: fastify, @fastify/*, prom-client and pino belong to the adapters (proxy/, admin/, observe/).` },
          { group: forbidden.map((f) => `**/${f}/*`), message: `src/${dir}/ must not import from ${forbidden.join(', ')} (docs/architecture.md: the layers point one way).` },
        ],
      }],
    },
  }]
}

export default tseslint.config(
  // The generated config validator is ajv's output (scripts/gen-config-validator.ts); .scratch is local experiments.
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.scratch/**', 'src/config/validate.generated.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': ['error', {
        // node:test's test()/describe() return promises the runner itself awaits.
        allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['test', 'it', 'describe', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }],
      }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'error',
      eqeqeq: ['error', 'always'],
    },
  },
  // The layers (docs/architecture.md): the request core and the units under it know nothing of
  // fastify, prom-client or pino (adapters in proxy/, admin/ and observe/ do), and no layer
  // imports the one above it. Type-only imports count too: a type pulls its package's shape in.
  ...layer('keys', ['proxy', 'request', 'verify', 'policy', 'observe', 'admin', 'cli', 'demo']),
  ...layer('verify', ['proxy', 'request', 'policy', 'observe', 'admin', 'cli', 'demo']),
  ...layer('policy', ['proxy', 'request', 'observe', 'admin', 'cli', 'demo']),
  ...layer('request', ['proxy', 'observe', 'admin', 'cli', 'demo']),
  {
    // The CLI and scripts talk to a terminal on purpose.
    files: ['src/cli.ts', 'src/demo/**/*.ts', 'scripts/**', 'bench/**', 'test/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', URL: 'readonly' },
    },
  },
)

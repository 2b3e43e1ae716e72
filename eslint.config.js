import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/', 'test-output/', 'bench/results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      globals: { ...globals.node },
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'inline-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Nest lifecycle hooks and store methods are async by contract even when one implementation is not.
      '@typescript-eslint/require-await': 'off',
      // Decorator-driven classes (modules) are legitimately empty.
      '@typescript-eslint/no-extraneous-class': 'off',
    },
  },
  {
    files: ['test/**/*.ts', 'src/**/*.spec.ts', 'bench/**/*.ts'],
    rules: {
      // Tests read parsed JSON bodies whose shape the assertions themselves check.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  // Importing @nestjs/swagger costs about 200 ms of start-up: only what builds docs/openapi.json may
  // (src/http/openapi.decorators.ts says how routes are documented without it). Before the blocks
  // below, whose stricter lists replace this one for their files.
  {
    files: ['src/**/*.ts'],
    ignores: [
      '**/*.spec.ts',
      'src/**/*.openapi.ts',
      'src/http/openapi.command.ts',
      'src/http/openapi.decorators.ts',
      'src/http/openapi.document.ts',
      'src/http/openapi.schemas.ts',
    ],
    rules: {
      'no-restricted-imports': [
        'error',
        { paths: [{ name: '@nestjs/swagger', message: 'Only the OpenAPI document builder imports @nestjs/swagger.' }] },
      ],
    },
  },
  // Boundaries that would otherwise be only a comment: the protocol is shared by the server and any
  // client, so it depends on nothing; the SDK runs in browsers, so it depends on the protocol only.
  {
    files: ['src/protocol/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^(?!\\./)', message: 'src/protocol/ imports nothing but its own files.' }] },
      ],
    },
  },
  {
    files: ['src/client/**/*.ts'],
    ignores: ['**/*.spec.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^(?!\\./|\\.\\./protocol/)',
              message: 'src/client/ imports nothing but its own files and src/protocol/.',
            },
          ],
        },
      ],
    },
  },
  { files: ['**/*.js'], ...tseslint.configs.disableTypeChecked },
  // The chat page's script runs in browsers.
  { files: ['public/**/*.js'], languageOptions: { globals: { ...globals.browser } } },
);

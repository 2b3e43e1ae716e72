/** DI token of the page's files, loaded once (see `loadPageAssets`). */
export const PAGE_ASSETS = Symbol('PAGE_ASSETS');

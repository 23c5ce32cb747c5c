// Hash routes (`#/goals`, `#/integrations?config=3`): the page and its parameters live in the
// URL, so a view can be reopened and the back key works.

export type Page = 'integrations' | 'goals' | 'log' | 'sources' | 'tester' | 'sandbox';
export const pages: { page: Page; label: string }[] = [
  { page: 'integrations', label: 'Integrations' },
  { page: 'goals', label: 'Goals' },
  { page: 'log', label: 'Delivery log' },
  { page: 'sources', label: 'Sources' },
  { page: 'tester', label: 'Tester' },
  { page: 'sandbox', label: 'Sandbox' },
];

function parse(hash: string): { page: Page; params: URLSearchParams } {
  const [path, query = ''] = hash.replace(/^#\/?/, '').split('?');
  const page = pages.find((p) => p.page === path)?.page ?? 'integrations';
  return { page, params: new URLSearchParams(query) };
}

export function href(page: Page, params?: Record<string, string>): string {
  const query = params ? new URLSearchParams(params).toString() : '';
  return `#/${page}${query ? `?${query}` : ''}`;
}

class Router {
  page = $state<Page>('integrations');
  params = $state(new URLSearchParams());

  constructor() {
    if (typeof window === 'undefined') return;
    this.read();
    window.addEventListener('hashchange', () => this.read());
  }

  private read() {
    const { page, params } = parse(window.location.hash);
    this.page = page;
    this.params = params;
  }

  go(page: Page, params?: Record<string, string>) {
    const next = href(page, params);
    if (window.location.hash !== next) window.location.hash = next;
  }
}

export const router = new Router();
export { parse as parseRoute };

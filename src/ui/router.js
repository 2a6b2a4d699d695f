// Client-side navigation under /ui (the server answers every /ui path with the same page).
export function navigate(href) {
  history.pushState(null, '', href);
  dispatchEvent(new PopStateEvent('popstate'));
}

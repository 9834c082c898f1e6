// Hash routes (#/patients/pt-1?tab=messages): each screen is a module with a path pattern,
// the roles that see it and a render(root, params, query) that may return a cleanup.
const routes = [];

export function route(screen) {
  const names = [];
  const pattern = screen.path.replace(/:(\w+)/g, (_, name) => {
    names.push(name);
    return "([^/]+)";
  });
  routes.push({ screen, names, regex: new RegExp(`^${pattern}$`) });
}

export function screens() {
  return routes.map((r) => r.screen);
}

export function parse(hash = window.location.hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const [path, search = ""] = raw.split("?");
  for (const { screen, names, regex } of routes) {
    const match = regex.exec(path);
    if (match) {
      const params = Object.fromEntries(names.map((n, i) => [n, decodeURIComponent(match[i + 1])]));
      return { screen, params, query: Object.fromEntries(new URLSearchParams(search)), path };
    }
  }
  return { screen: null, params: {}, query: {}, path };
}

export function go(path) {
  if (window.location.hash === `#${path}`) window.dispatchEvent(new HashChangeEvent("hashchange"));
  else window.location.hash = path;
}

export function link(path) {
  return `#${path}`;
}

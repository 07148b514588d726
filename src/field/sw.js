// The field app's service worker: it keeps the app shell of this version in a cache of
// its own and serves it when there is no network. The API is never cached: data lives in
// IndexedDB and reaches the server only through sync. A new version (its VERSION differs,
// so the browser installs it) waits until the page asks it to take over (app.js: when no
// form holds input, or on the user's tap), then drops the old shell.

const VERSION = "__VERSION__";
const CACHE = `gocua-field-${VERSION}`;
const SHELL = [
  "/field/", "/field/app.js", "/field/sync.js", "/field/text.js", "/field/duplicates.js", "/field/vocabulary.js", "/field/idbstore.js",
  "/field/memstore.js", "/field/schedule.js", "/field/units.js", "/field/app.css", "/field/manifest.webmanifest", "/field/icon.svg",
  "/field/icon-192.png", "/field/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL)));
});

self.addEventListener("message", (event) => {
  if (event.data?.type === "take-over") self.skipWaiting();
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k.startsWith("gocua-field-") && k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/field/")) return;
  // Every page of the app is the one shell; the route is in the hash.
  const key = event.request.mode === "navigate" ? "/field/" : url.pathname;
  event.respondWith(
    caches.open(CACHE).then((c) => c.match(key)).then((hit) => hit || fetch(event.request)),
  );
});

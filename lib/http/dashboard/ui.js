// Preact with hooks and htm, the standalone bundle of the `htm` package, served by the server
// at /ui/preact.js (a URL, not a file beside this one, hence the dynamic import). Every other
// module of the dashboard imports it from here.
const PREACT_URL = "/ui/preact.js";
export const { html, render, useCallback, useEffect, useRef, useState } = await import(PREACT_URL);

// Fetches every URL at once (one pause, several requests pending) and returns the bodies.
// input: { "urls": ["https://...", ...] }
const responses = await Promise.all(input.urls.map((url) => fetch(url)));
await Promise.all(responses.map((response) => response.json()));

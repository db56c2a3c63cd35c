// Fetches one URL and returns its JSON body.
// input: { "url": "https://..." }
const response = await fetch(input.url);
if (!response.ok) throw new Error(`GET ${input.url} answered ${response.status}`);
await response.json();

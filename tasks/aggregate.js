// Fetches several URLs one after another (one durable pause each) and sums a field.
// input: { "urls": ["https://...", ...], "field": "value" }
const totals = { count: 0, sum: 0, failed: [] };
for (const url of input.urls) {
  try {
    const response = await fetch(url);
    const body = await response.json();
    totals.count++;
    totals.sum += Number(body[input.field] ?? 0);
    console.log(`${url}: ${body[input.field]}`);
  } catch (error) {
    totals.failed.push(`${url}: ${error.message}`);
  }
}
totals;

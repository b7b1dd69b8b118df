// Node's spec reporter, except that the run's closing summary ("ℹ tests 11", "ℹ pass 10", ...)
// comes last: the stock reporter prints the list of failing tests after it, and the last lines
// of a run are what CI reads.
import { spec as Spec } from 'node:test/reporters';

const SUMMARY = /^(tests|suites|pass|fail|cancelled|skipped|todo|duration_ms) /;

function isSummary(event) {
  return event.type === 'test:diagnostic' && event.data.nesting === 0 && SUMMARY.test(event.data.message);
}

async function* through(reporter, events) {
  const chunks = [];
  let wake = null;
  let done = false;
  reporter.on('data', (chunk) => {
    chunks.push(chunk);
    wake?.();
  });
  reporter.on('end', () => {
    done = true;
    wake?.();
  });
  (async () => {
    for await (const event of events) reporter.write(event);
    reporter.end();
  })();
  for (;;) {
    while (chunks.length) yield chunks.shift();
    if (done) return;
    await new Promise((resolve) => {
      wake = resolve;
    });
    wake = null;
  }
}

export default async function* specWithSummaryLast(source) {
  const held = [];
  async function* rest() {
    for await (const event of source) {
      if (isSummary(event)) held.push(event);
      else yield event;
    }
  }
  yield* through(new Spec(), rest());
  yield* through(new Spec(), held);
}

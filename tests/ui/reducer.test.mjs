// The window's event reducer, run by `node --test` in the test command: the events are the
// engine's (camelCase, as `forward` sends them), the outcomes what the window would show.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newJob, reduce, setFiles } from '../../ui/js/reducer.js';

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';
const C = '00000000-0000-4000-8000-00000000000c';

function started(ids) {
  const job = newJob('  /data/plates  ', 1000);
  setFiles(job, ids);
  return reduce(job, { type: 'jobStarted', files: ids.length }, 0);
}

test('a new job lists every file queued, in input order', () => {
  const job = started([A, B, C]);
  assert.equal(job.dest, '/data/plates');
  assert.equal(job.started, 1000);
  assert.deepEqual(job.order.map((r) => r.id), [A, B, C]);
  assert.deepEqual(job.counts, { all: 3, active: 0, queued: 3, done: 0, skipped: 0, failed: 0 });
  assert.equal(job.totalFiles, 3);
});

test('each file moves from queued through active to its end, and the chips follow', () => {
  const job = started([A, B, C]);
  reduce(job, { type: 'fileResolved', fileId: A, path: 'a.csv', size: 10 }, 0);
  assert.equal(job.files.get(A).state, 'downloading');
  assert.equal(job.counts.active, 1);
  reduce(job, { type: 'fileDone', fileId: A, path: 'a.csv', bytes: 10, verified: 'md5' }, 0);
  reduce(job, { type: 'fileSkipped', fileId: B, path: 'b.csv', reason: 'already downloaded' }, 0);
  reduce(job, { type: 'fileFailed', fileId: C, reason: 'not found in TDP', kind: 'not-found' }, 0);
  assert.deepEqual(job.counts, { all: 3, active: 0, queued: 0, done: 1, skipped: 1, failed: 1 });
  assert.equal(job.files.get(A).verified, 'md5');
  assert.equal(job.files.get(C).kind, 'not-found');
  // A late retry of a file that has ended changes nothing.
  reduce(job, { type: 'fileRetrying', fileId: C, reason: 'reset', kind: 'network', attempt: 2 }, 0);
  assert.equal(job.files.get(C).state, 'failed');
});

test('progress gives each active file its bytes and a speed from successive ticks', () => {
  const job = started([A]);
  const tick = (bytes) => ({
    type: 'progress', filesDone: 0, filesTotal: 1, bytesDone: bytes, bytesKnown: 4000,
    bytesPerSecond: 0, active: [{ fileId: A, bytes, size: 4000, name: 'a.raw', stage: 'downloading' }],
  });
  reduce(job, tick(0), 0);
  reduce(job, tick(1000), 500);
  const r = job.files.get(A);
  assert.equal(r.bytes, 1000);
  assert.equal(r.size, 4000);
  assert.equal(r.name, 'a.raw');
  assert.equal(r.speed, 2000); // 1000 bytes in 0.5 s
  // Ticks closer than 200 ms apart leave the speed as it was.
  reduce(job, tick(1100), 550);
  assert.equal(r.speed, 2000);
});

test('a job that stops leaves its unfinished files as such and says why', () => {
  const job = started([A, B]);
  reduce(job, { type: 'fileDone', fileId: A, path: 'a', bytes: 1, verified: 'size' }, 0);
  reduce(job, {
    type: 'jobFinished',
    summary: { stopped: 'the disk is full at /data', stopKind: 'disk-full', downloaded: 1 },
  }, 0);
  assert.equal(job.running, false);
  assert.equal(job.files.get(B).state, 'unfinished');
  assert.equal(job.counts.queued, 1);
  assert.deepEqual(job.error, { kind: 'disk-full', message: 'the disk is full at /data' });
  // Cancelling is no error.
  const other = started([A]);
  reduce(other, { type: 'jobFinished', summary: { stopped: 'cancelled', stopKind: 'cancelled' } }, 0);
  assert.equal(other.error, null);
});

test('a search job gets its rows from its pages', () => {
  const job = started([]);
  reduce(job, { type: 'filesFound', ids: [B, A], files: 2, bytes: 30, excluded: 1, complete: false }, 0);
  reduce(job, { type: 'filesFound', ids: [C], files: 3, bytes: 40, excluded: 1, complete: true }, 0);
  assert.deepEqual(job.order.map((r) => r.id), [B, A, C]);
  assert.equal(job.totalFiles, 3);
  assert.deepEqual(job.found, { files: 3, bytes: 40, excluded: 1, complete: true });
});

test('waiting for a token is asked once, and running again clears it', () => {
  const job = started([A]);
  reduce(job, { type: 'jobState', state: 'waitingForToken' }, 0);
  assert.equal(job.needsToken, true);
  job.renewStatus = { text: 'checking', tone: '' };
  reduce(job, { type: 'jobState', state: 'waitingForToken' }, 0);
  assert.deepEqual(job.renewStatus, { text: 'checking', tone: '' });
  reduce(job, { type: 'jobState', state: 'running' }, 0);
  assert.equal(job.needsToken, false);
  reduce(job, { type: 'jobState', state: 'waitingForNetwork' }, 0);
  assert.equal(job.waitingForNetwork, true);
});

test('an error that ends the job before it starts is shown by its kind', () => {
  const job = started([A]);
  reduce(job, { type: 'jobError', kind: 'auth', message: 'TDP rejected the auth token (401)' }, 0);
  assert.equal(job.running, false);
  assert.equal(job.error.kind, 'auth');
});

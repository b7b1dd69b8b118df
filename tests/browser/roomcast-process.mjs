// Starts the real roomcast binary ($ROOMCAST_BIN) and waits for the port it reports: shared by
// tests/browser and tests/seed-client. Node built-ins only, so either folder can import it.
import { spawn } from 'node:child_process';

/**
 * Spawns `roomcast ...args --log-level info` and resolves with { child, port, log } once it prints
 * its "listening on http://HOST:PORT/" line; rejects (after killing it by PID) if it exits first
 * or says nothing within 10 s. `log` keeps its last 200 stderr lines.
 */
export function spawnRoomcast(args) {
  const bin = process.env.ROOMCAST_BIN;
  if (!bin) throw new Error('set ROOMCAST_BIN to the roomcast binary (e.g. build/release/src/roomcast)');
  const child = spawn(bin, [...args, '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
  const log = [];
  return new Promise((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const fail = (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (child.exitCode === null) child.kill('SIGKILL');
      reject(new Error(`${error.message ?? error}\n--- roomcast stderr ---\n${log.join('\n')}`));
    };
    const timer = setTimeout(() => fail('roomcast did not report its port within 10 s'), 10_000);
    child.on('error', fail);
    child.on('exit', (code, signal) => fail(`roomcast exited early (code ${code}, signal ${signal})`));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      buffered += chunk;
      let newline;
      while ((newline = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        log.push(line);
        if (log.length > 200) log.shift();
        const match = /listening on http:\/\/([^\s/]+):(\d+)\//.exec(line);
        if (match && !settled) {
          settled = true;
          clearTimeout(timer);
          resolve({ child, port: Number(match[2]), log });
        }
      }
    });
  });
}

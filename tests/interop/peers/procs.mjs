// Child processes for the node-driven tests: start a program, wait for its "listening on URI"
// line, stop it by PID; every child still running is killed when node exits.
import { spawn } from 'node:child_process';

const children = new Set();
function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      /* gone */
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    killAll();
    process.exit(1);
  });
}

// Starts `cmd args` and resolves with {proc, uri, port, log()} once it prints "listening on URI".
export function start(cmd, args, { timeoutMs = 10000, env } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env || process.env });
    children.add(proc);
    let out = '';
    let done = false;
    const log = () => out;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      proc.kill('SIGKILL');
      reject(new Error(`${cmd} did not print 'listening on' within ${timeoutMs} ms:\n${out}`));
    }, timeoutMs);
    const onData = (chunk) => {
      out += chunk.toString();
      if (out.length > 1 << 20) out = out.slice(-(1 << 19));
      const m = /^listening on (\S+)/m.exec(out);
      if (m && !done) {
        done = true;
        clearTimeout(timer);
        const port = Number(/:(\d+)(\/|$)/.exec(m[1])[1]);
        resolve({ proc, uri: m[1], port, log });
      }
    };
    proc.stdout.on('data', onData);
    proc.stderr.on('data', onData);
    proc.on('exit', (code, sig) => {
      children.delete(proc);
      if (!done) {
        done = true;
        clearTimeout(timer);
        reject(new Error(`${cmd} exited (${code ?? sig}) before listening:\n${out}`));
      }
    });
  });
}

// Stops a started process with SIGNAL (default SIGKILL) and waits for it to exit.
export function stop(p, signal = 'SIGKILL') {
  return new Promise((resolve) => {
    if (!p || p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
    p.proc.once('exit', () => resolve());
    p.proc.kill(signal);
  });
}

// Retries start() while the port is still in use (a restart on the same port).
export async function restart(cmd, args, tries = 50) {
  for (let i = 0; ; i++) {
    try {
      return await start(cmd, args);
    } catch (e) {
      if (i >= tries) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Polls fn() until it returns a truthy value; rejects after timeoutMs with `what`.
export async function until(fn, what, timeoutMs = 10000, everyMs = 20) {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// A tiny runner: run(name, fn) in sequence, each bounded; summary() prints "N passed, M failed".
export function runner(label, stepTimeoutMs = 30000) {
  let passed = 0;
  let failed = 0;
  return {
    async run(name, fn) {
      let timer;
      try {
        await Promise.race([
          fn(),
          new Promise((_, rej) => {
            timer = setTimeout(() => rej(new Error(`step timed out after ${stepTimeoutMs} ms`)), stepTimeoutMs);
          }),
        ]);
        passed++;
        console.log(`ok   ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
      } finally {
        clearTimeout(timer);
      }
    },
    summary() {
      console.log(`${label}: ${passed} passed, ${failed} failed`);
      return failed === 0;
    },
  };
}

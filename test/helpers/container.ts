// Building and running sluice's image in tests, on machines where base images cannot be
// pulled and no Docker engine runs.
//
// - builderForTests() picks buildah (runs containers with --isolation chroot, no nested
//   runtime needed), else podman, else docker with an engine that answers.
// - buildNodeBaseImage() makes a base image from the node binary running the tests (plus
//   its shared libraries, npm, sh and env): what BASE_IMAGE needs, without a registry.
// - TestContainer runs commands in a container of an image, on the host network so the
//   test database on 127.0.0.1 is reachable.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export type Builder = 'buildah' | 'podman' | 'docker';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; never throws for a non-zero exit. */
export function run(file: string, args: readonly string[], timeoutMs = 60_000): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr: error && !stderr ? error.message : stderr });
    });
  });
}

/** Like run(), but throws with the command's output when it fails. */
export async function runOk(file: string, args: readonly string[], timeoutMs?: number): Promise<CommandResult> {
  const result = await run(file, args, timeoutMs);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** The builder the image tests use, or why there is none. */
export async function builderForTests(): Promise<{ builder: Builder } | { reason: string }> {
  if ((await run('buildah', ['--version'], 10_000)).code === 0) return { builder: 'buildah' };
  if ((await run('podman', ['--version'], 10_000)).code === 0) return { builder: 'podman' };
  const docker = await run('docker', ['info'], 20_000);
  if (docker.code === 0) return { builder: 'docker' };
  const dockerNote = docker.code === 127 || /ENOENT/.test(docker.stderr) ? '' : ' (a docker CLI exists, but `docker info` reaches no engine)';
  return { reason: `no image builder: buildah, podman or docker with a running engine is needed${dockerNote}; on Debian: apt-get install -y buildah` };
}

const chroot = (builder: Builder): string[] => (builder === 'docker' ? [] : ['--isolation', process.env.BUILDAH_ISOLATION ?? 'chroot']);

/** Whether the builder's storage has this image. */
async function imageExists(builder: Builder, ref: string): Promise<boolean> {
  const args = builder === 'buildah' ? ['inspect', '--type', 'image', ref] : ['image', 'inspect', ref];
  return (await run(builder, args, 30_000)).code === 0;
}

/** Shared libraries `ldd` lists for a binary (absolute paths as the loader looks them up). */
async function sharedLibraries(binary: string): Promise<string[]> {
  const { stdout } = await runOk('ldd', [binary]);
  return stdout
    .split('\n')
    .map((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((lib): lib is string => lib !== undefined);
}

/**
 * A base image holding the node binary that runs this process, npm, sh and env, with the
 * host's CA bundle so npm reaches the registry through the same TLS proxy the host uses.
 * Built once per node version and builder storage; returns its reference.
 */
export async function buildNodeBaseImage(builder: Builder): Promise<string> {
  const caBundle = [process.env.NODE_EXTRA_CA_CERTS, '/etc/ssl/certs/ca-certificates.crt'].find((p): p is string => !!p && existsSync(p));
  // Rebuilt when node or the CA bundle changes.
  const inputs = createHash('sha256').update(realpathSync(process.execPath)).update(caBundle ? readFileSync(caBundle) : '');
  const ref = `localhost/sluice-test-node:${process.versions.node}-${inputs.digest('hex').slice(0, 8)}`;
  if (await imageExists(builder, ref)) return ref;

  const dir = mkdtempSync(join(tmpdir(), 'sluice-node-base-'));
  try {
    const rootfs = join(dir, 'rootfs');
    // Merged /usr, like current Debian: /bin, /lib, /lib64 point into /usr, so every path
    // ldd prints lands in one tree.
    for (const d of ['usr/bin', 'usr/lib', 'usr/lib64', 'etc/ssl/certs', 'root', 'tmp']) mkdirSync(join(rootfs, d), { recursive: true });
    for (const d of ['bin', 'lib', 'lib64']) symlinkSync(`usr/${d}`, join(rootfs, d));
    chmodSync(join(rootfs, 'tmp'), 0o1777);
    const put = (from: string, to: string): void => {
      mkdirSync(dirname(join(rootfs, to)), { recursive: true });
      copyFileSync(realpathSync(from), join(rootfs, to));
    };

    const binaries = { '/usr/bin/node': process.execPath, '/usr/bin/sh': '/bin/sh', '/usr/bin/env': '/usr/bin/env' };
    for (const [to, from] of Object.entries(binaries)) {
      put(from, to);
      for (const lib of await sharedLibraries(realpathSync(from))) put(lib, lib);
    }
    // npm: …/lib/node_modules/npm/bin/npm-cli.js beside the node binary, or the one on PATH.
    const npmCli = [join(dirname(process.execPath), '../lib/node_modules/npm/bin/npm-cli.js'), '/usr/lib/node_modules/npm/bin/npm-cli.js', '/usr/local/lib/node_modules/npm/bin/npm-cli.js'].find(existsSync);
    if (!npmCli) throw new Error('npm (npm-cli.js) not found next to the node binary');
    cpSync(realpathSync(join(dirname(npmCli), '..')), join(rootfs, 'usr/lib/node_modules/npm'), { recursive: true });
    symlinkSync('../lib/node_modules/npm/bin/npm-cli.js', join(rootfs, 'usr/bin/npm'));
    if (caBundle) copyFileSync(caBundle, join(rootfs, 'etc/ssl/certs/ca-certificates.crt'));
    writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\n');

    writeFileSync(
      join(dir, 'Containerfile'),
      [
        'FROM scratch',
        'COPY rootfs/ /',
        'ENV PATH=/usr/local/bin:/usr/bin:/bin',
        ...(caBundle ? ['ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt'] : []),
        'CMD ["node"]',
        '',
      ].join('\n'),
    );
    await runOk(builder, ['build', ...chroot(builder), '-t', ref, '-f', join(dir, 'Containerfile'), dir], 300_000);
    return ref;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ImageConfig {
  entrypoint: string[] | null;
  user: string;
  labels: Record<string, string>;
  id: string;
}

export async function inspectImage(builder: Builder, ref: string): Promise<ImageConfig> {
  if (builder === 'buildah') {
    const info = JSON.parse((await runOk('buildah', ['inspect', '--type', 'image', ref])).stdout) as {
      FromImageID: string;
      OCIv1: { config: { Entrypoint?: string[]; User?: string; Labels?: Record<string, string> } };
    };
    const c = info.OCIv1.config;
    return { entrypoint: c.Entrypoint ?? null, user: c.User ?? '', labels: c.Labels ?? {}, id: info.FromImageID };
  }
  const [info] = JSON.parse((await runOk(builder, ['image', 'inspect', ref])).stdout) as Array<{
    Id: string;
    Config: { Entrypoint?: string[] | null; User?: string; Labels?: Record<string, string> | null };
  }>;
  if (!info) throw new Error(`no image ${ref}`);
  return { entrypoint: info.Config.Entrypoint ?? null, user: info.Config.User ?? '', labels: info.Config.Labels ?? {}, id: info.Id.replace(/^sha256:/, '') };
}

/** A daemon started in a container: stop() sends SIGTERM to it and returns its exit code. */
export interface RunningProcess {
  output(): string;
  stop(timeoutMs: number): Promise<number>;
}

/**
 * Commands run in one container of `image`, on the host network. With buildah the same
 * container serves every command (so writtenPaths() can list what they wrote); docker and
 * podman start a fresh one per command with a read-only root filesystem.
 */
export class TestContainer {
  private constructor(
    readonly builder: Builder,
    readonly image: string,
    private readonly name: string,
  ) {}

  static async create(builder: Builder, image: string): Promise<TestContainer> {
    const name = `sluice-image-test-${process.pid}-${Date.now()}`;
    if (builder === 'buildah') await runOk('buildah', ['from', '--name', name, image]);
    return new TestContainer(builder, image, name);
  }

  private args(command: readonly string[], env: Record<string, string>, detached: boolean): string[] {
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    if (this.builder === 'buildah') return ['run', ...chroot('buildah'), '--network', 'host', ...envArgs, this.name, '--', ...command];
    const [entrypoint = 'node', ...rest] = command;
    return [
      'run',
      ...(detached ? ['-d', '--name', this.name] : ['--rm']),
      '--network=host',
      '--read-only',
      '--tmpfs',
      '/tmp',
      ...envArgs,
      '--entrypoint',
      entrypoint,
      this.image,
      ...rest,
    ];
  }

  /** Runs `command` (e.g. ['node', 'dist/main.js', 'migrate']) to completion. */
  exec(command: readonly string[], env: Record<string, string> = {}, timeoutMs = 120_000): Promise<CommandResult> {
    return run(this.builder, this.args(command, env, false), timeoutMs);
  }

  /** Starts a long-running `command`. */
  async start(command: readonly string[], env: Record<string, string> = {}): Promise<RunningProcess> {
    if (this.builder !== 'buildah') {
      await runOk(this.builder, this.args(command, env, true));
      const { builder, name } = this;
      let logs = '';
      return {
        output: () => logs,
        async stop(timeoutMs) {
          await run(builder, ['stop', '-t', String(Math.ceil(timeoutMs / 1000)), name], timeoutMs + 10_000);
          const state = await runOk(builder, ['inspect', '-f', '{{.State.ExitCode}}', name]);
          const got = await run(builder, ['logs', name]);
          logs = got.stdout + got.stderr;
          await run(builder, ['rm', '-f', name]);
          return Number(state.stdout.trim());
        },
      };
    }
    const child = spawn('buildah', this.args(command, env, false), { stdio: ['ignore', 'pipe', 'pipe'] });
    let logs = '';
    child.stdout.on('data', (d: Buffer) => (logs += d.toString()));
    child.stderr.on('data', (d: Buffer) => (logs += d.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))));
    return {
      output: () => logs,
      // buildah run does not pass SIGTERM on gracefully, so it goes to the process itself,
      // as the kubelet's would go to the container's PID 1.
      async stop(timeoutMs) {
        const target = descendantRunning(child, command[0] ?? 'node');
        if (target === undefined) throw new Error(`no ${command[0]} process under buildah run; output:\n${logs}`);
        process.kill(target, 'SIGTERM');
        const timer = new Promise<number>((resolve) => setTimeout(() => resolve(-1), timeoutMs).unref());
        const code = await Promise.race([exited, timer]);
        if (code === -1) {
          child.kill('SIGKILL');
          throw new Error(`still running ${timeoutMs} ms after SIGTERM; output:\n${logs}`);
        }
        return code;
      },
    };
  }

  /**
   * Paths the commands run so far wrote into the container's filesystem, relative to its
   * root; undefined where that cannot be seen (only buildah on the overlay driver shows it;
   * docker and podman ran with a read-only root filesystem, which enforces it).
   */
  async writtenPaths(): Promise<string[] | undefined> {
    if (this.builder !== 'buildah') return undefined;
    const merged = (await runOk('buildah', ['mount', this.name])).stdout.trim();
    try {
      const upper = join(dirname(merged), 'diff');
      if (!merged.endsWith('/merged') || !existsSync(upper)) return undefined;
      return listTree(upper);
    } finally {
      await run('buildah', ['umount', this.name]);
    }
  }

  async remove(): Promise<void> {
    if (this.builder === 'buildah') await run('buildah', ['rm', this.name]);
  }
}

/** Files and directories under `root`, as /-rooted paths. */
function listTree(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true }).flatMap((e) => {
    const path = `${prefix}/${e.name}`;
    return e.isDirectory() ? [path, ...listTree(root, path)] : [path];
  });
}

/**
 * The pid of the process named `name` among the descendants of `parent` (buildah run →
 * its chroot helper → the command), else the deepest descendant, in case the command
 * renamed itself (process.title).
 */
function descendantRunning(parent: ChildProcess, name: string): number | undefined {
  if (parent.pid === undefined) return undefined;
  const children = new Map<number, number[]>();
  const names = new Map<number, string>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid …"; comm may hold spaces and parens.
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      const pid = Number(entry);
      names.set(pid, stat.slice(stat.indexOf('(') + 1, close));
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // gone meanwhile
    }
  }
  const queue = [...(children.get(parent.pid) ?? [])];
  let deepest: number | undefined;
  for (let pid = queue.shift(); pid !== undefined; pid = queue.shift()) {
    if (names.get(pid) === name) return pid;
    deepest = pid;
    queue.push(...(children.get(pid) ?? []));
  }
  return deepest;
}

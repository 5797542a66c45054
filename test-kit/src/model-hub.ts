import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Manifest, ManifestModel } from '@clinic-hub/ai-workers/models';

/**
 * A local model hub laid out like huggingface.co: GET
 * `/<owner>/<repo>/resolve/<revision>/<path>` serves a file (files over
 * 1 KiB through a redirect, as the hub sends large files to its CDN); an
 * unknown file is a 404 with `X-Error-Code: EntryNotFound`. Files live
 * under `<root>/<owner>/<repo>/<revision>/`.
 */
export class ModelHub {
  readonly requests: string[] = [];
  private server!: Server;
  port = 0;

  constructor(readonly root: string) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      this.requests.push(path);
      const cdn = /^\/cdn\/(.+)$/.exec(path);
      const match = cdn ? null : /^\/([^/]+)\/([^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
      const file = cdn ? join(this.root, cdn[1]!) : match ? join(this.root, match[1]!, match[2]!, match[3]!, match[4]!) : null;
      if (!file || file.includes('..') || !existsSync(file)) {
        res.writeHead(404, { 'content-type': 'application/json', 'x-error-code': 'EntryNotFound' }).end('{"error":"Entry not found"}');
        return;
      }
      const body = readFileSync(file);
      if (match && body.length > 1024) {
        res.writeHead(302, { location: `/cdn/${match[1]}/${match[2]}/${match[3]}/${match[4]}` }).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
    });
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Publishes a model folder as `repo` at `revision`; returns its manifest entry (checksums of what was published). */
  publish(repo: string, revision: string, folder: string, task: ManifestModel['task'], language: ManifestModel['language'] = null): ManifestModel {
    const target = join(this.root, repo, revision);
    mkdirSync(target, { recursive: true });
    cpSync(folder, target, { recursive: true });
    const files = readdirSync(folder).sort().map((name) => {
      const body = readFileSync(join(folder, name));
      return { path: name, sha256: createHash('sha256').update(body).digest('hex'), bytes: body.length };
    });
    return { repo, revision, task, language, files };
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export const manifestOf = (models: Record<string, ManifestModel>): Manifest => ({ models });

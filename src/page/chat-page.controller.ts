import { Controller, Get, Inject, NotFoundException, Param, Res } from '@nestjs/common';
import type { Response } from 'express';
import type { PageAsset } from './page-assets.js';
import { PAGE_ASSETS } from './page.constants.js';

/**
 * Only this origin's scripts and styles, sockets to this host, no framing: the page renders
 * untrusted text (model output) and must never run it.
 */
const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self' ws: wss:",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The chat page at `/`, its modules (`/page/…`) and the client SDK it loads. Not gated by
 * readiness: the page must load while the service starts, to say so.
 */
@Controller()
export class ChatPageController {
  constructor(@Inject(PAGE_ASSETS) private readonly assets: ReadonlyMap<string, PageAsset>) {}

  @Get()
  index(@Res() response: Response): void {
    this.send(response, '/index.html');
  }

  // Named one by one, or under a prefix of their own: a `:file` route would shadow `/metrics` and the rest.
  @Get('chat.js')
  script(@Res() response: Response): void {
    this.send(response, '/chat.js');
  }

  @Get('chat.css')
  styles(@Res() response: Response): void {
    this.send(response, '/chat.css');
  }

  @Get('page/:file')
  pageModule(@Param('file') file: string, @Res() response: Response): void {
    this.send(response, `/page/${file}`);
  }

  @Get('sdk/:part/:file')
  sdk(@Param('part') part: string, @Param('file') file: string, @Res() response: Response): void {
    this.send(response, `/sdk/${part}/${file}`);
  }

  private send(response: Response, key: string): void {
    const asset = this.assets.get(key);
    if (asset === undefined) throw new NotFoundException(`no such file: ${key}`);
    response
      .status(200)
      .setHeader('Content-Type', asset.contentType)
      // Replaces the data-only policy every answer has (src/http/edge.middleware.ts): this one runs scripts.
      .setHeader('Content-Security-Policy', CONTENT_SECURITY_POLICY)
      .setHeader('Cache-Control', 'no-cache')
      .send(asset.body);
  }
}

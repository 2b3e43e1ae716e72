import { Controller, Get, Header, Res, UseFilters } from '@nestjs/common';
import type { Response } from 'express';
import { HttpErrorFilter } from '../http/http-error.filter.js';
import { MetricsService } from './metrics.service.js';

/** `GET /metrics`: Prometheus text format. Not gated by readiness: a starting instance is worth watching too. */
@Controller('metrics')
@UseFilters(HttpErrorFilter)
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('Cache-Control', 'no-store')
  async scrape(@Res({ passthrough: true }) response: Response): Promise<string> {
    const { contentType, body } = await this.metrics.scrape();
    response.setHeader('Content-Type', contentType);
    return body;
  }
}

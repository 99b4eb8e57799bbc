// src/scoring/load/load-source.ts
export interface ScrapedLoad { running: number; waiting: number; kvUsage: number /* 0..1 */; ageMs: number; stale: boolean }
export interface LoadSource { get(endpoint: string): ScrapedLoad | undefined }

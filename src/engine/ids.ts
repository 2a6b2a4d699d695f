import { randomBytes, randomUUID } from 'node:crypto';

export const newRunId = (): string => randomUUID();
export const newArtifactId = (): string => `art_${randomBytes(12).toString('hex')}`;
export const newWorkerId = (): string => `w_${randomBytes(6).toString('hex')}`;

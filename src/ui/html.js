// Preact with htm tagged templates: components without a compile step.
import { h } from 'preact';
import htm from 'htm';

export const html = htm.bind(h);

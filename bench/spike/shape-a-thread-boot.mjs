// Worker threads do not inherit the tsx loader: registered here, then the TypeScript thread module is imported.
import { register } from 'tsx/esm/api';

register();
await import('./shape-a-thread.ts');

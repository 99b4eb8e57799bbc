export { readModelDir as readModelDirForTest } from '../../../src/prompt/model-dir.js';

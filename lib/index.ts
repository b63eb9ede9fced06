// SPDX-License-Identifier: MIT
/**
 * weightsmith: post-training surgery on neural-network weights, natively in Node.js.
 *
 * ```ts
 * import * as ws from 'weightsmith';
 * using f = await ws.open('model.safetensors');
 * const w = f.get('model.layers.0.mlp.down_proj.weight');   // zero-copy view
 * await ws.save('model-bf16.safetensors', { w: await ws.convert(w, 'bf16') });
 * ```
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from './native';

export { DTYPES, DTYPE_NAMES, dtypeInfo, isDType, byteLengthOf } from './dtype';
export type { DType, ArithDType, PassThroughDType, TypedArray, DTypeInfo } from './dtype';
export { WeightsmithError, ERROR_CODES } from './errors';
export type { ErrorCode, ErrorContext } from './errors';
export { Tensor, tensor, zeros, convert, convertSync } from './tensor';
export type { ConvertOptions } from './tensor';
export { WeightFile, open, openSync } from './file';
export type { OpenOptions, IoMode, TensorInfo, MetadataValue, MetadataType } from './file';
export {
  QuantizedTensor, GGML_TYPES, GGML_BLOCKS, DEQUANTIZABLE_GGML_TYPES, QUANTIZABLE_GGML_TYPES, dequantize, dequantizeSync, quantize,
  quantizeSync, bnb4Table, bnbDynamicMap,
} from './quantized';
export type { GgmlType, GgmlSpec, Fp8Spec, IntSpec, Nf4Spec, Fp4Spec, Bnb4Spec, Bnb4Options, QuantSpec, DequantizeOptions, QuantizeOptions } from './quantized';
export { WeightWriter, SafetensorsWriter, createWriter, save, saveSync, referenceOrder } from './writer';
export type { WriterOptions, SaveOptions, PlanEntry } from './writer';
export { matmul, matmulSync } from './linalg';
export type { MatmulOptions } from './linalg';
export { qr, qrSync, svd, svdSync, svdBatched, svdBatchedSync } from './svd';
export type { QrResult, SvdResult, SvdOptions, SvdBatchedOptions } from './svd';
export { randomizedSvd, randomizedSvdSync, lowRank, lowRankSync, extractLora, extractLoraSync, cur, curSync } from './lowrank';
export type { RandomizedSvdOptions, LowRankOptions, LowRankResult, ExtractLoraOptions, ExtractLoraResult, CurOptions, CurResult } from './lowrank';
export { syrk, syrkSync, cholesky, choleskySync, choleskyInverse, choleskyInverseSync, triangularSolve, triangularSolveSync } from './factor';
export type { SyrkOptions, CholeskyOptions, TriangularSolveOptions } from './factor';
export { Mask, mask, maskSync, applyMask, applyMaskAsync, maskLayout } from './sparsity';
export type { MaskOptions } from './sparsity';
export { SparseTensor, compress, decompress, sparseEntries, readSparse } from './sparse-formats';
export type { SparseFormat } from './sparse-formats';
export { bitsandbytesEntries, bitsandbytesConfig, bitsandbytesPlan, isBitsandbytes, readBitsandbytes } from './bitsandbytes';
export { compressedTensorsEntries, compressedTensorsPlan, quantizationConfig, readCompressedTensor, specFromConfig } from './compressed-tensors';
export type { IntFormat } from './compressed-tensors';
export { compare } from './compare';
export type { CompareResult } from './compare';
export { Calibrator } from './calibrator';
export type { CalibratorOptions, CalibratorAddOptions, CalibratorFileOptions } from './calibrator';
export { setThreads, getThreads, cpuInfo } from './threads';
export type { CpuInfo } from './threads';

/** The package version. */
export const version: string = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;

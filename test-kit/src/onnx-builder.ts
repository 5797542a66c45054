import onnxProto from 'onnx-proto';

/**
 * A few lines over onnx-proto for writing small ONNX graphs in tests: float
 * and int64 initializers, nodes, inputs and outputs with named dynamic axes.
 */
const { onnx } = onnxProto;
type Dim = number | string;

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly initializers: onnxProto.onnx.ITensorProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private counter = 0;

  input(name: string, dims: Dim[], type: 'float' | 'int64' = 'float'): string {
    this.inputs.push(valueInfo(name, dims, type));
    return name;
  }

  output(name: string, dims: Dim[], type: 'float' | 'int64' = 'float'): void {
    this.outputs.push(valueInfo(name, dims, type));
  }

  floats(dims: number[], values: ArrayLike<number>, name = this.fresh('w')): string {
    if (values.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`initializer ${name}: ${values.length} values for shape ${dims}`);
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.FLOAT, floatData: Array.from(values) });
    return name;
  }

  ints(dims: number[], values: number[], name = this.fresh('i')): string {
    this.initializers.push({ name, dims, dataType: onnx.TensorProto.DataType.INT64, int64Data: values });
    return name;
  }

  /** One node; returns its first output's name (or `output` when given). */
  op(opType: string, inputs: string[], attributes: Record<string, number | number[]> = {}, output = this.fresh(opType.toLowerCase())): string {
    this.nodes.push({
      opType,
      input: inputs,
      output: [output],
      name: `${opType}_${this.counter}`,
      attribute: Object.entries(attributes).map(([name, value]) =>
        Array.isArray(value)
          ? { name, type: onnx.AttributeProto.AttributeType.INTS, ints: value }
          : { name, type: onnx.AttributeProto.AttributeType.INT, i: value },
      ),
    });
    return output;
  }

  encode(name: string, opset = 13): Buffer {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      producerName: 'clinic-hub-test-fixture',
      opsetImport: [{ domain: '', version: opset }],
      graph: { name, node: this.nodes, initializer: this.initializers, input: this.inputs, output: this.outputs },
    });
    return Buffer.from(onnx.ModelProto.encode(model).finish());
  }

  private fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }
}

function valueInfo(name: string, dims: Dim[], type: 'float' | 'int64'): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: type === 'float' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.INT64,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

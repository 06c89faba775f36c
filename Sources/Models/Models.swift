// Models: reading and writing weights and whole networks (safetensors, ONNX, NumPy, PyTorch).
import Engine

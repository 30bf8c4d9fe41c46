"""Exporters to formats served outside Keras (`export_onnx`)."""

from distilbert_hub.export.onnx import ONNX_OPSET, export_onnx, run_onnx

__all__ = ["ONNX_OPSET", "export_onnx", "run_onnx"]

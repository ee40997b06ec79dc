"""The PDF layer (infra/layers.py) and binary answers: only the function that renders statements carries the
layer, built for Lambda's Python and platform; the API sends a PDF as bytes, and so does the twin's gateway, only
to a request whose first Accept type is a binary media type."""

import base64
import re
import sys
from types import SimpleNamespace

from infra import code, layers
from infra.stack import FUNCTIONS
from infra.twin.gateway import Gateway
from infra.twin.template import Route, load
from tests.infra.conftest import of_type
from treue.routes import BINARY_MEDIA_TYPES


def test_only_the_function_that_renders_statements_carries_the_pdf_layer(template):
    [(layer_id, layer)] = of_type(template, "AWS::Lambda::LayerVersion").items()
    assert layer_id.startswith("PdfLayer")
    with_layer = {lid for lid, fn in of_type(template, "AWS::Lambda::Function").items()
                  if {"Ref": layer_id} in fn["Properties"].get("Layers", [])}
    assert len(with_layer) == 1 and re.fullmatch(r"AccrualFunction[0-9A-F]{8}", with_layer.pop())
    assert [spec.id for spec in FUNCTIONS if spec.layers] == ["Accrual"]
    runtimes = {fn["Properties"]["Runtime"] for fn in of_type(template, "AWS::Lambda::Function").values()}
    assert layer["Properties"]["CompatibleRuntimes"] == sorted(runtimes)
    assert layer["Properties"]["CompatibleArchitectures"] == ["x86_64"]
    architectures = {a for fn in of_type(template, "AWS::Lambda::Function").values()
                     for a in fn["Properties"].get("Architectures", ["x86_64"])}
    assert architectures == {"x86_64"}


def test_the_api_sends_pdfs_as_bytes(template, synthesized):
    [api] = of_type(template, "AWS::ApiGateway::RestApi").values()
    assert api["Properties"]["BinaryMediaTypes"] == list(BINARY_MEDIA_TYPES) == ["application/pdf"]
    assert load(synthesized).binary_media_types == ("application/pdf",)


def test_pip_builds_wheels_of_lambda_s_python_and_platform_only():
    command = layers.pip_command(("fpdf2==2.8.9",), "3.13", code.ROOT / "out")
    assert command[:3] == [sys.executable, "-m", "pip"]
    assert "--only-binary=:all:" in command and command[command.index("--python-version") + 1] == "3.13"
    platforms = [command[i + 1] for i, arg in enumerate(command) if arg == "--platform"]
    assert platforms[0] == "manylinux_2_34_x86_64" and "manylinux2014_x86_64" in platforms
    assert all(p.endswith("_x86_64") for p in platforms)
    assert layers.digest(("fpdf2==2.8.9",), "3.13", None) != layers.digest(("fpdf2==2.8.9",), "3.12", None)


def test_the_built_layer_has_fpdf2_and_pillow_for_lambda_s_python(synthesized):
    """The build synth made (kept in .treue/layers): packages under python/, Pillow's extension for CPython 3.13
    on x86_64 Linux (not this interpreter's), no scripts."""
    version = code.PYTHON_VERSION
    built = layers.cached("pdf", version, code.bytecode_interpreter(version)) / "python"
    assert (built / "fpdf" / "__init__.py").is_file() and (built / "fontTools").is_dir()
    tag = version.replace(".", "")
    assert list((built / "PIL").glob(f"_imaging.cpython-{tag}-x86_64-linux-gnu.so"))
    assert not (built / "bin").exists()
    assert sorted(p.name.split("-")[0] for p in built.glob("*.dist-info")) == [
        "defusedxml", "fonttools", "fpdf2", "pillow"]


class _Function:
    spec = SimpleNamespace(name="treue-fn")

    def __init__(self, result):
        self.result = result

    def invoke(self, event):
        return SimpleNamespace(ok=True, result=self.result, error_type=None, error_message=None)


def test_the_twin_s_gateway_sends_a_base64_answer_as_bytes_only_to_a_binary_first_accept_type():
    pdf = b"%PDF-1.3 \xe2\xe3\xcf\xd3"
    answer = {"statusCode": 200, "isBase64Encoded": True, "body": base64.b64encode(pdf).decode(),
              "multiValueHeaders": {"Content-Type": ["application/pdf"]}}
    gateway = Gateway([Route("GET", "/v1/statement", "Fn", None)], {"Fn": _Function(answer)}, {}, echo=None)
    gateway.binary_media_types = ("application/pdf",)

    def body(accept):
        headers = {"Accept": accept} if accept is not None else {}
        return gateway.handle("GET", "/v1/statement", headers, b"", "127.0.0.1").body

    assert body("application/pdf") == pdf
    assert body("application/pdf;q=0.9, */*") == pdf
    assert body("*/*") == base64.b64encode(pdf)  # as API Gateway: the first Accept type decides
    assert body("text/html,application/pdf") == base64.b64encode(pdf)
    assert body(None) == base64.b64encode(pdf)
    gateway.binary_media_types = ("image/*", "application/pdf")
    assert body("image/png") == pdf

"""The local twin: the whole stack on 127.0.0.1, built from the synthesized CloudFormation template."""

//! The Calico label selector language: parser, evaluator and canonical form.

//! What the three backbones share, so [`super::SeqModel`] dispatches to them in one place.

use super::fusion::ItemFusion;
use super::item_input::ItemInput;
use burn::tensor::{Int, Tensor};

/// A sequential backbone over the shared item input.
pub trait Backbone {
    /// The item input (id table, fusion, completion).
    fn input(&self) -> ItemInput<'_>;

    /// The content fusion, to be replaced (content values put in).
    fn fusion_mut(&mut self) -> &mut Option<ItemFusion>;

    /// Hidden states of a left-padded window.
    ///
    /// # Shapes
    /// - ids: `[batch, len]`
    /// - rows: `[n_embeddings, d]`, the fused input table when the model has content
    /// - completion: `batch * len` ratios (NaN: unknown), read when the model has a
    ///   completion input
    /// - output: `[batch, len, d]`
    fn hidden(
        &self,
        ids: Tensor<2, Int>,
        rows: Option<&Tensor<2>>,
        completion: Option<&[f32]>,
    ) -> Tensor<3>;

    /// The id appended after a history at inference (a cloze model's mask).
    fn mask_id(&self) -> Option<i64> {
        None
    }

    /// Per-track output bias, where the model has one.
    ///
    /// # Shapes
    /// - output: `[n_items]`
    fn item_bias(&self) -> Option<Tensor<1>> {
        None
    }

    /// The representation scored against items, from hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]`
    /// - output: `[n, d]`
    fn project(&self, hidden: Tensor<2>) -> Tensor<2> {
        hidden
    }
}

/// The [`Backbone`] methods of a backbone that declares the item-input fields under their usual
/// names (`item_emb`, `fusion`, `completion_emb`, `n_items`) and has an inherent `forward`
/// with [`Backbone::hidden`]'s signature; used inside its `impl Backbone`.
macro_rules! item_input_methods {
    () => {
        fn input(&self) -> $crate::model::ItemInput<'_> {
            $crate::model::ItemInput {
                item_emb: &self.item_emb,
                fusion: self.fusion.as_ref(),
                completion: self.completion_emb.as_ref(),
                n_items: self.n_items,
            }
        }

        fn fusion_mut(&mut self) -> &mut Option<$crate::model::fusion::ItemFusion> {
            &mut self.fusion
        }

        fn hidden(
            &self,
            ids: burn::tensor::Tensor<2, burn::tensor::Int>,
            rows: Option<&burn::tensor::Tensor<2>>,
            completion: Option<&[f32]>,
        ) -> burn::tensor::Tensor<3> {
            self.forward(ids, rows, completion)
        }
    };
}
pub(crate) use item_input_methods;

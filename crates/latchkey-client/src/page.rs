//! Pages of a list, and streams that walk through all of them.
//!
//! A [`Pages`] stream fetches one page each time it is polled for the next: it starts at
//! the query's page (1 by default) and goes on while `result_info` says there are more
//! pages (`page < total_pages`). When an answer has no `result_info`, it stops at the first
//! page shorter than the `per_page` asked for, or empty. An [`Items`] stream flattens those
//! pages into their items and still knows which page it is on, for progress.
//!
//! A failed page (after the client's retries) is the stream's last item: the stream ends
//! after an error, so that it never skips a page.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use futures_core::Stream;
use futures_util::stream::{self, BoxStream, StreamExt};
use latchkey_api::ResultInfo;

use crate::Error;

/// One page of a list.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Paging information, when the server sent it: the page number, `total_pages`,
    /// `total_count`.
    pub info: Option<ResultInfo>,
}

/// A stream of the pages of a list, fetched one by one as it is polled; see the methods
/// ending in `_pages` on [`Client`](crate::Client). Each page's [`Page::info`] tells
/// where it is in the list.
///
/// ```no_run
/// # async fn demo() -> Result<(), latchkey_client::Error> {
/// use futures_util::TryStreamExt;
/// use latchkey_client::{Client, Family, ListQuery};
///
/// let client = Client::new("cfut_...").with_base_url("http://127.0.0.1:8787/client/v4");
/// let mut pages = client.token_pages(&Family::User, ListQuery::default());
/// while let Some(page) = pages.try_next().await? {
///     if let Some(info) = page.info {
///         eprintln!("page {} of {}", info.page, info.total_pages);
///     }
///     for token in page.items {
///         println!("{}", token.name);
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Pages<T> {
    inner: BoxStream<'static, Result<Page<T>, Error>>,
}

impl<T: Send + 'static> Pages<T> {
    /// Pages from `first` on, each fetched by `fetch(page_number)`. `per_page` is the page
    /// size asked for, if any, to recognise the last page when answers lack `result_info`.
    pub(crate) fn new<F, Fut>(first: u64, per_page: Option<u64>, fetch: F) -> Self
    where
        F: FnMut(u64) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Page<T>, Error>> + Send + 'static,
    {
        let pages = stream::unfold(
            (fetch, Some(first.max(1))),
            move |(mut fetch, next)| async move {
                let number = next?;
                match fetch(number).await {
                    Ok(page) => {
                        let following = page_after(number, per_page, &page);
                        Some((Ok(page), (fetch, following)))
                    }
                    Err(error) => Some((Err(error), (fetch, None))),
                }
            },
        );
        Pages {
            // Fused, so that polling after the end keeps answering `None`.
            inner: pages.fuse().boxed(),
        }
    }
}

impl<T> Pages<T> {
    /// The items of these pages, one by one.
    pub fn items(self) -> Items<T> {
        Items {
            pages: self,
            current: Vec::new().into_iter(),
            info: None,
        }
    }
}

impl<T> Stream for Pages<T> {
    type Item = Result<Page<T>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

impl<T> fmt::Debug for Pages<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pages").finish_non_exhaustive()
    }
}

/// A stream of the items of a list, fetching the next page when the current one is used
/// up; see [`Client::tokens`](crate::Client::tokens) and the methods starting with `all_`.
/// [`Items::info`] gives the current page's paging information, for progress.
///
/// ```no_run
/// # async fn demo() -> Result<(), latchkey_client::Error> {
/// use futures_util::TryStreamExt;
/// use latchkey_client::{Client, Family, ListQuery};
///
/// let client = Client::new("cfut_...").with_base_url("http://127.0.0.1:8787/client/v4");
/// let all: Vec<_> = client
///     .tokens(&Family::Account("0123456789abcdef0123456789abcdef".into()), ListQuery::default())
///     .try_collect()
///     .await?;
/// println!("{} tokens", all.len());
/// # Ok(()) }
/// ```
pub struct Items<T> {
    pages: Pages<T>,
    current: std::vec::IntoIter<T>,
    info: Option<ResultInfo>,
}

impl<T> Items<T> {
    /// Paging information of the page the last item came from (`None` before the first
    /// page, or when the server sent none).
    pub fn info(&self) -> Option<&ResultInfo> {
        self.info.as_ref()
    }
}

// Nothing is pinned in place: the pages are boxed and the items are moved out.
impl<T> Unpin for Items<T> {}

impl<T> Stream for Items<T> {
    type Item = Result<T, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(item) = this.current.next() {
                return Poll::Ready(Some(Ok(item)));
            }
            match ready!(Pin::new(&mut this.pages).poll_next(cx)) {
                Some(Ok(page)) => {
                    this.info = page.info;
                    this.current = page.items.into_iter();
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => return Poll::Ready(None),
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.current.len(), None)
    }
}

impl<T> fmt::Debug for Items<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Items")
            .field("buffered", &self.current.len())
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The page to fetch after page `number`, if any.
fn page_after<T>(number: u64, per_page: Option<u64>, page: &Page<T>) -> Option<u64> {
    if page.items.is_empty() {
        return None;
    }
    let total_pages = page.info.and_then(|info| match info.total_pages {
        0 if info.per_page > 0 => Some(info.total_count.div_ceil(info.per_page)),
        0 => None,
        pages => Some(pages),
    });
    let more = match total_pages {
        Some(total_pages) => number < total_pages,
        None => {
            let asked = per_page.or(page.info.map(|info| info.per_page));
            asked.is_none_or(|size| page.items.len() as u64 >= size)
        }
    };
    more.then(|| number.checked_add(1)).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(count: usize, info: Option<(u64, u64, u64)>) -> Page<u8> {
        Page {
            items: vec![0; count],
            info: info.map(|(page, per_page, total_pages)| ResultInfo {
                page,
                per_page,
                count: count as u64,
                total_count: 0,
                total_pages,
            }),
        }
    }

    #[test]
    fn follows_total_pages() {
        assert_eq!(page_after(1, None, &page(5, Some((1, 5, 3)))), Some(2));
        assert_eq!(page_after(3, None, &page(5, Some((3, 5, 3)))), None);
        assert_eq!(page_after(4, None, &page(5, Some((4, 5, 3)))), None);
    }

    #[test]
    fn derives_total_pages_from_total_count() {
        let mut answer = page(5, Some((1, 5, 0)));
        answer.info.as_mut().unwrap().total_count = 11;
        assert_eq!(page_after(2, None, &answer), Some(3));
        assert_eq!(page_after(3, None, &answer), None);
    }

    #[test]
    fn without_info_stops_at_a_short_or_empty_page() {
        assert_eq!(page_after(1, Some(5), &page(5, None)), Some(2));
        assert_eq!(page_after(2, Some(5), &page(4, None)), None);
        assert_eq!(page_after(1, None, &page(4, None)), Some(2));
        assert_eq!(page_after(2, None, &page(0, None)), None);
        assert_eq!(page_after(1, None, &page(0, Some((1, 5, 9)))), None);
    }
}
